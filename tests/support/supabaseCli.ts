/**
 * Runs the real Supabase CLI (the `supabase` devDependency, pinned in package.json) the way a
 * user runs it, against the stand-in Management API: a fresh HOME (so the only access token is
 * the one `supabase login --token` stores there), and a CLI profile whose `api_url` is the
 * stand-in. Each run is recorded for the deploy transcript.
 */
import type { StandInManagementApi } from "./managementApi.ts";

const ROOT = new URL("../../", import.meta.url);
export const CLI_BIN = new URL("node_modules/supabase/dist/supabase.js", ROOT).pathname;

export async function cliAvailable(): Promise<boolean> {
  try {
    await Deno.stat(CLI_BIN);
    return true;
  } catch {
    return false;
  }
}

export interface CliRun {
  command: string;
  code: number;
  output: string;
}

export interface SupabaseCli {
  /** Runs `supabase <args>` in `projectDir`; never throws on a non-zero exit. */
  run(args: string[], extraEnv?: Record<string, string>): Promise<CliRun>;
  transcript: CliRun[];
  close(): Promise<void>;
}

// deno-lint-ignore no-control-regex
const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

export async function supabaseCli(
  api: StandInManagementApi,
  projectDir: string,
): Promise<SupabaseCli> {
  const home = await Deno.makeTempDir({ prefix: "byok-cli-home-" });
  const profile = `${home}/stand-in-profile.yaml`;
  await Deno.writeTextFile(profile, api.profileYaml());
  const transcript: CliRun[] = [];
  return {
    transcript,
    async run(args, extraEnv = {}) {
      const command = new Deno.Command("node", {
        args: [CLI_BIN, ...args, "--profile", profile],
        cwd: projectDir,
        clearEnv: true,
        env: {
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          HOME: home,
          SUPABASE_TELEMETRY_DISABLED: "1",
          DO_NOT_TRACK: "1",
          ...extraEnv,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      });
      const result = await command.output();
      const decode = (bytes: Uint8Array) => stripAnsi(new TextDecoder().decode(bytes));
      const run = {
        command: `supabase ${args.join(" ")}`,
        code: result.code,
        output: (decode(result.stdout) + decode(result.stderr)).trim(),
      };
      transcript.push(run);
      return run;
    },
    close: () => Deno.remove(home, { recursive: true }),
  };
}

/** The transcript as text: each command, its exit code and its output. */
export function renderTranscript(runs: CliRun[]): string {
  return runs.map((run) => `$ ${run.command}\n${run.output}\n(exit ${run.code})\n`).join("\n");
}

/**
 * A copy of the project as a user's checkout holds it, without node_modules or dot-folders, plus
 * files that must never be uploaded: a `.data/` with a dev secret and a `supabase/functions/.env`.
 */
export async function copyProject(sentinel: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "byok-project-" });
  const copy = async (from: URL, to: string) => {
    const info = await Deno.stat(from);
    if (info.isFile) return await Deno.copyFile(from, to);
    await Deno.mkdir(to, { recursive: true });
    for await (const entry of Deno.readDir(from)) {
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      await copy(new URL(entry.name + (entry.isDirectory ? "/" : ""), from), `${to}/${entry.name}`);
    }
  };
  for (const part of ["supabase/", "local/", "tests/", "scripts/"]) {
    await copy(new URL(part, ROOT), `${dir}/${part.slice(0, -1)}`);
  }
  for (const file of ["deno.json", "package.json"]) {
    await copy(new URL(file, ROOT), `${dir}/${file}`);
  }
  await Deno.mkdir(`${dir}/.data`);
  await Deno.writeTextFile(`${dir}/.data/secrets.json`, JSON.stringify({ jwtSecret: sentinel }));
  await Deno.writeTextFile(`${dir}/supabase/functions/.env`, `OPENAI_API_KEY=${sentinel}\n`);
  return dir;
}
