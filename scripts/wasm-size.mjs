// The browser package's download size, gzipped (level 9) as a server sends it, against its
// limits and targets. Exits 1 above a limit; prints every figure.
//   node scripts/wasm-size.mjs [--json]
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const pkg = new URL('../bindings-wasm/pkg/', import.meta.url)
const gz = (files) => files.reduce((n, f) => n + gzipSync(readFileSync(new URL(f, pkg)), { level: 9 }).length, 0)
const raw = (files) => files.reduce((n, f) => n + readFileSync(new URL(f, pkg)).length, 0)
const KB = 1000
// `limit`: enforced now, so sizes only go down (today's figures plus a little); `target`:
// where they must get to (not met yet: see the README).
const entries = [
  // What a page downloads for each entry: its JS glue and its wasm module.
  { entry: 'raas-web/ids', files: ['ids/raas_wasm.js', 'ids/raas_wasm_bg.wasm'], target: 80 * KB, limit: 80 * KB },
  { entry: 'raas-web', files: ['web/raas_wasm.js', 'web/raas_wasm_bg.wasm'], target: 250 * KB, limit: 250 * KB },
]
let failed = false
const rows = entries.map((e) => {
  const size = gz(e.files)
  const within = size <= e.limit
  if (!within) failed = true
  return { entry: e.entry, raw: raw(e.files), gzip: size, limit: e.limit, target: e.target, met: size <= e.target, within }
})
if (process.argv.includes('--json')) console.log(JSON.stringify(rows))
else {
  console.log('| entry | raw | gzip | limit (enforced) | target | target met |\n|---|---:|---:|---:|---:|---|')
  for (const r of rows) {
    console.log(`| \`${r.entry}\` | ${(r.raw / KB).toFixed(0)} KB | ${(r.gzip / KB).toFixed(0)} KB | ${r.limit / KB} KB${r.within ? '' : ' EXCEEDED'} | ${r.target / KB} KB | ${r.met ? 'yes' : 'no'} |`)
  }
}
if (failed) {
  console.error('wasm-size: a size limit is exceeded')
  process.exit(1)
}
