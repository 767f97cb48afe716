import { build } from 'esbuild'

/**
 * A Worker's entry bundled for workerd as wrangler bundles it (one ES module; `cloudflare:*` left to the runtime), for
 * the runs that start Miniflare themselves: the restart storm's Worker and the bench's floor Worker.
 */
export const bundleWorker = async (entry: string, { minify = false } = {}): Promise<string> => {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*'],
    minify,
    write: false,
  })
  return out.outputFiles[0]!.text
}
