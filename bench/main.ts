/**
 * `npm run bench`: every benchmark section in one run, each comparing against its own baseline
 * measured in the same run. Sections: credentials, proxy, native (llm-proxy's Anthropic and Gemini
 * routes beside its OpenAI one), quotas (when present).
 * `npm run bench -- credentials` runs one section.
 */
import { runCredentialsBench } from "./credentials.ts";

type Section = () => Promise<void>;

async function optionalSection(path: string, exportName: string): Promise<Section | null> {
  try {
    const module = await import(path);
    return module[exportName] ?? null;
  } catch (error) {
    if (error instanceof TypeError && /Module not found/.test(error.message)) return null;
    throw error;
  }
}

const sections: Record<string, Section | null> = {
  credentials: runCredentialsBench,
  proxy: await optionalSection("./proxy.ts", "runProxyBench"),
  native: await optionalSection("./proxyNative.ts", "runNativeBench"),
  quotas: await optionalSection("./quotas.ts", "runQuotasBench"),
};

const wanted = Deno.args.length > 0 ? Deno.args : Object.keys(sections);
for (const name of wanted) {
  const run = sections[name];
  if (!run) {
    console.log(`\n${name}: not available`);
    continue;
  }
  console.log(`\n==== ${name}`);
  await run();
}
