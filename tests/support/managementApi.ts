/**
 * A stand-in for the Supabase Management API (api.supabase.com) on loopback, for running the
 * real Supabase CLI against it. It answers the routes `link`, `secrets`, `functions deploy` and
 * `projects` call with the shapes the CLI decodes, and records every request, every function's
 * multipart upload (metadata and each file exactly as sent) and every secret name.
 * Point the CLI at it with `profileYaml()` written to a file and `--profile <file>`.
 */

export const PROJECT_REF = "abcdefghijklmnopqrst";
/** The format the CLI checks: `sbp_` and 40 hex digits. */
export const ACCESS_TOKEN = "sbp_" + "0123456789abcdef".repeat(3).slice(0, 40);

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  authorized: boolean;
}

export interface FunctionUpload {
  slug: string;
  bundleOnly: boolean;
  metadata: {
    name?: string;
    entrypoint_path: string;
    import_map_path?: string;
    static_patterns?: string[];
    verify_jwt?: boolean;
  };
  /** Path as the CLI named it -> file content. */
  files: Map<string, string>;
}

export interface StandInManagementApi {
  url: string;
  requests: RecordedRequest[];
  uploads: Map<string, FunctionUpload>;
  /** Secret names set through `secrets set` (values are never kept). */
  secretNames: string[];
  /** YAML for a CLI profile file whose API is this stand-in. */
  profileYaml(): string;
  close(): Promise<void>;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function project(ref: string) {
  return {
    id: ref,
    ref,
    organization_id: "stand-in-org",
    organization_slug: "stand-in-org",
    name: "stand-in",
    region: "us-east-1",
    created_at: "2026-01-01T00:00:00Z",
    status: "ACTIVE_HEALTHY",
    database: {
      host: `db.${ref}.standin.local`,
      version: "15.8.1.100",
      postgres_engine: "15",
      release_channel: "ga",
    },
  };
}

async function readUpload(
  req: Request,
  slug: string,
  bundleOnly: boolean,
): Promise<FunctionUpload> {
  const form = await req.formData();
  const metadata = JSON.parse(String(form.get("metadata") ?? "{}"));
  const files = new Map<string, string>();
  for (const entry of form.getAll("file")) {
    if (typeof entry === "string") continue;
    files.set(entry.name, await entry.text());
  }
  return { slug, bundleOnly, metadata, files };
}

export function startManagementApi(): StandInManagementApi {
  const requests: RecordedRequest[] = [];
  const uploads = new Map<string, FunctionUpload>();
  const secretNames: string[] = [];
  const deployed = new Map<string, Record<string, unknown>>();

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const authorized = req.headers.get("authorization") === `Bearer ${ACCESS_TOKEN}`;
    requests.push({ method: req.method, path: url.pathname, query: url.search, authorized });
    if (!authorized) return json({ message: "Unauthorized" }, 401);

    const match = url.pathname.match(/^\/v1\/projects\/([a-z]{20})(\/.*)?$/);
    if (url.pathname === "/v1/projects" && req.method === "GET") {
      return json([project(PROJECT_REF)]);
    }
    if (!match) return json({ message: `no route ${req.method} ${url.pathname}` }, 404);
    const [, ref, rest = ""] = match;
    if (ref !== PROJECT_REF) return json({ message: "project not found" }, 404);

    if (rest === "" && req.method === "GET") return json(project(ref));
    if (rest === "/functions/deploy" && req.method === "POST") {
      const slug = url.searchParams.get("slug") ?? "";
      const upload = await readUpload(req, slug, url.searchParams.get("bundleOnly") === "true");
      uploads.set(slug, upload);
      const fn = {
        id: crypto.randomUUID(),
        slug,
        name: upload.metadata.name ?? slug,
        version: (Number(deployed.get(slug)?.version ?? 0)) + 1,
        status: "ACTIVE",
        entrypoint_path: upload.metadata.entrypoint_path,
        import_map_path: upload.metadata.import_map_path,
        import_map: Boolean(upload.metadata.import_map_path),
        verify_jwt: upload.metadata.verify_jwt,
        created_at: Date.now(),
        updated_at: Date.now(),
      };
      deployed.set(slug, fn);
      return json(fn, 201);
    }
    if (rest === "/functions" && req.method === "PUT") {
      const body = await req.json() as Record<string, unknown>[];
      return json({ functions: body });
    }
    if (rest === "/functions" && req.method === "GET") return json([...deployed.values()]);
    if (rest === "/secrets" && req.method === "POST") {
      const body = await req.json() as { name: string }[];
      secretNames.push(...body.map((secret) => secret.name));
      return json({}, 201);
    }
    if (rest === "/secrets" && req.method === "GET") {
      return json(secretNames.map((name) => ({ name, value: "redacted" })));
    }
    if (rest === "/api-keys" && req.method === "GET") {
      return json([
        { name: "anon", api_key: "stand-in-anon-key", type: "legacy" },
        { name: "service_role", api_key: "stand-in-service-key", type: "legacy" },
      ]);
    }
    return json({ message: `no route ${req.method} ${url.pathname}` }, 404);
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handle);
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    requests,
    uploads,
    secretNames,
    profileYaml: () =>
      [
        "name: stand-in",
        `api_url: ${url}`,
        `dashboard_url: ${url}/dashboard`,
        "project_host: standin.local",
        "",
      ].join("\n"),
    close: () => server.shutdown(),
  };
}
