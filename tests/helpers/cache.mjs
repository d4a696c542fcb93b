// Reference results are slow to compute (the JS CommP runs at a few MB/s) and deterministic,
// so one test run computes each once and shares it between backends and the browser suite.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { referenceCids } from './reference.mjs'

const file = join(dirname(fileURLToPath(import.meta.url)), '..', '.tmp', 'reference-cache.json')

export async function cachedReference(key, bytes) {
  let cache = {}
  try {
    cache = JSON.parse(await readFile(file, 'utf8'))
  } catch {}
  if (cache[key]) return cache[key]
  const ref = await referenceCids(bytes)
  cache[key] = ref
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, JSON.stringify(cache))
  return ref
}
