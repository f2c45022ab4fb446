/**
 * The deploy a user runs, with the real Supabase CLI, against a stand-in Management API on
 * loopback: `login`, `link`, `secrets set`, `functions deploy --use-api`. Every function's
 * upload is then resolved exactly as uploaded (only the uploaded files, the uploaded import map,
 * no node_modules), as the server-side bundler does (edge-runtime's `bundle` takes the import
 * map as the Deno config file), and checked for files that must never ship.
 * Set DEPLOY_TRANSCRIPT=<file> to append each command's output to it.
 */
import { parse } from "smol-toml";
import { assert, assertEquals } from "../support/assert.ts";
import { ACCESS_TOKEN, PROJECT_REF, startManagementApi } from "../support/managementApi.ts";
import {
  cliAvailable,
  copyProject,
  renderTranscript,
  supabaseCli,
} from "../support/supabaseCli.ts";
import { resolveAsUploaded } from "../support/uploadedFunction.ts";
import {
  FUNCTION_PACKAGES,
  functionNames,
  rootImports,
} from "../../scripts/gen-function-imports.ts";

const SENTINEL = `never-deployed-${crypto.randomUUID()}`;

Deno.test({
  name: "functions deploy --use-api: every function resolves as uploaded, and nothing else ships",
  ignore: !(await cliAvailable()),
  async fn() {
    const api = startManagementApi();
    const project = await copyProject(SENTINEL);
    const cli = await supabaseCli(api, project);
    try {
      const login = await cli.run(["login", "--token", ACCESS_TOKEN]);
      assertEquals(login.code, 0, login.output);
      const link = await cli.run(["link", "--project-ref", PROJECT_REF, "--yes"]);
      assertEquals(link.code, 0, link.output);
      const secrets = await cli.run([
        "secrets",
        "set",
        `CREDENTIALS_ENCRYPTION_KEY=${"ab".repeat(32)}`,
        `JWT_SECRET=${"cd".repeat(32)}`,
        "--yes",
      ]);
      assertEquals(secrets.code, 0, secrets.output);
      assert(!/skipping/i.test(secrets.output), `a secret name was refused: ${secrets.output}`);
      assertEquals(api.secretNames.sort(), ["CREDENTIALS_ENCRYPTION_KEY", "JWT_SECRET"]);

      const deploy = await cli.run(["functions", "deploy", "--use-api", "--yes"]);
      assertEquals(deploy.code, 0, deploy.output);

      // The README's `db push --remote` targets the linked project (a bare `db push` targets the
      // local stack). The stand-in has no database to reach: tests/deploy/hostedDatabase_test.ts
      // runs the push itself, with --remote=<db-url>.
      const push = await cli.run(["db", "push", "--remote", "--yes"]);
      assert(push.output.includes(`Target: project stand-in (${PROJECT_REF})`), push.output);

      assert(api.requests.every((r) => r.authorized), "a request without the stored token");
      const names = await functionNames();
      assertEquals(names.length, 13);
      assertEquals([...api.uploads.keys()].sort(), names);

      const config = parse(await Deno.readTextFile(`${project}/supabase/config.toml`)) as {
        functions: Record<string, { verify_jwt?: boolean }>;
      };
      const imports = await rootImports();
      const declared = FUNCTION_PACKAGES.map((pkg) => imports[pkg].replace(/^npm:/, ""));
      const unresolved: string[] = [];
      for (const name of names) {
        const upload = api.uploads.get(name)!;
        for (const [path, content] of upload.files) {
          assert(
            path.startsWith(`supabase/functions/${name}/`) ||
              path.startsWith("supabase/functions/_shared/"),
            `${name} uploads ${path}, outside its folder and _shared/`,
          );
          assert(!/(_test|\.test)\.[jt]sx?$|\.env|\.data\//.test(path), `${name} uploads ${path}`);
          assert(!content.includes(SENTINEL), `${name} uploads a local secret in ${path}`);
        }

        const resolution = await resolveAsUploaded(upload);
        if (resolution.errors.length > 0) {
          unresolved.push(`${name}: ${resolution.errors[0]}`);
          continue;
        }
        // The upload holds exactly the graph: no module is missing, none is dead weight.
        const uploadedModules = [...upload.files.keys()].filter((p) => p.endsWith(".ts")).sort();
        assertEquals(resolution.localModules, uploadedModules, `${name}'s upload is not its graph`);
        assert(resolution.npmPackages.length > 0, `${name} resolved no npm package`);
        for (const pkg of resolution.npmPackages) {
          assert(declared.includes(pkg), `${name} resolves ${pkg}, not one of ${declared}`);
        }
      }
      assertEquals(unresolved, [], `${unresolved.length} of ${names.length} do not resolve`);
      for (const name of names) {
        const { metadata } = api.uploads.get(name)!;
        assertEquals(metadata.import_map_path, `supabase/functions/${name}/deno.json`);
        // The functions verify tokens themselves (supabase/config.toml says why).
        assertEquals(config.functions[name].verify_jwt, false, `${name} in config.toml`);
        assertEquals(metadata.verify_jwt, false, `${name} uploaded verify_jwt`);
      }
    } finally {
      const transcript = Deno.env.get("DEPLOY_TRANSCRIPT");
      if (transcript) {
        await Deno.writeTextFile(transcript, renderTranscript(cli.transcript), { append: true });
      }
      await cli.close();
      await api.close();
      await Deno.remove(project, { recursive: true });
    }
  },
});
