// Identifier throughput on one 256 MiB input (RAAS_BENCH_MIB to change): the native core,
// the napi addon, the wasm package in Node and the JS reference implementations, with ratios.
//   npm run bench      (builds nothing: run `npm run build` first)
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { referenceUnixfsCid, referencePiece } from '../tests/helpers/reference.mjs'

const require = createRequire(import.meta.url)
const mib = Number(process.env.RAAS_BENCH_MIB ?? 256)
const bytes = new Uint8Array(mib << 20)
{
  // xorshift, like the Rust bench: incompressible, deterministic
  let x = 0x9e3779b9
  for (let i = 0; i < bytes.length; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    bytes[i] = x; bytes[i + 1] = x >>> 8; bytes[i + 2] = x >>> 16; bytes[i + 3] = x >>> 24
  }
}

async function mbps(fn, runs = 1) {
  let best = Infinity
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    await fn()
    best = Math.min(best, performance.now() - t)
  }
  return bytes.length / (best / 1000) / 1e6
}

console.log(`Identifier throughput, ${mib} MiB input, MB/s (10^6 B/s)\n`)
console.log('native core (cargo bench -p raas-core --bench cids):')
const out = execFileSync('cargo', ['bench', '-q', '-p', 'raas-core', '--bench', 'cids'], {
  env: { ...process.env, RAAS_BENCH_MIB: String(mib) }, encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
})
const native = JSON.parse(out.trim().split('\n').at(-1))
process.stdout.write(out.split('\n').filter((l) => l.startsWith(' ')).join('\n') + '\n\n')

const addon = require('raas-node')
const wasm = require('raas-web')
const rows = []
rows.push(['napi addon', await mbps(() => addon.computePieceCid(bytes), 3),
  await mbps(() => addon.computeUnixfsCid(bytes), 3), await mbps(() => addon.computeCids(bytes), 3)])
rows.push(['wasm in Node', await mbps(() => wasm.computePieceCid(bytes), 2),
  await mbps(() => wasm.computeUnixfsCid(bytes), 2), await mbps(() => wasm.computeCids(bytes), 2)])
console.log('JS references (one run each; data-segment is slow)…')
const jsCommp = await mbps(() => referencePiece(bytes))
const jsUnixfs = await mbps(() => referenceUnixfsCid(bytes), 2)
rows.push(['JS reference', jsCommp, jsUnixfs, NaN])

const pad = (s, n) => String(s).padStart(n)
const f = (v) => (Number.isNaN(v) ? '—' : v.toFixed(0))
console.log(`\n${'surface'.padEnd(22)}${pad('CommP', 9)}${pad('UnixFS', 9)}${pad('both', 9)}` +
  `${pad('CommP vs JS', 14)}${pad('UnixFS vs JS', 14)}`)
const all = [
  ['native, 1 thread', native.commp1, NaN, NaN],
  [`native, ${native.cores} threads`, native.commpN, native.unixfs, native.all],
  ...rows,
]
for (const [name, c, u, b] of all) {
  console.log(`${name.padEnd(22)}${pad(f(c), 9)}${pad(f(u), 9)}${pad(f(b), 9)}` +
    `${pad(Number.isNaN(c) ? '—' : (c / jsCommp).toFixed(1) + 'x', 14)}` +
    `${pad(Number.isNaN(u) ? '—' : (u / jsUnixfs).toFixed(2) + 'x', 14)}`)
}
console.log(`\nnative, ${native.streamGib} GiB generated stream through computeCids: ` +
  `peak RSS ${native.streamPeakMib} MiB`)
