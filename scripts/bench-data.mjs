// npm run bench:data — the data path's speed on this machine (after `npm run build:node`):
// verified retrieval of one file (default 1 GiB; BENCH_DATA_MIB=n) from the local trustless
// gateway (tests/devnet/gateway.mjs, CAR), natively (cargo bench --bench data) and through
// raas-node, against @helia/verified-fetch on the same gateway; and upload throughput
// (identifiers and block store in one pass). Each measurement runs in its own process, so
// its peak resident memory is its own. Prints a table; MB/s = 10^6 bytes/s.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, openSync, writeSync, closeSync } from 'node:fs'
import { randomFillSync } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGateway } from '../tests/helpers/gateway.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const MIB = Number(process.env.BENCH_DATA_MIB ?? 1024)
// verified-fetch is far slower: it gets a smaller file of its own (BENCH_HELIA_MIB), and MB/s
// are compared.
const HELIA_MIB = Number(process.env.BENCH_HELIA_MIB ?? 64)
const dir = mkdtempSync(join(tmpdir(), 'raas-bench-data-'))
const file = join(dir, 'data.bin')
const small = join(dir, 'small.bin')

// Random bytes, written a MiB at a time (incompressible, no repeated blocks).
for (const [path, mib] of [[file, MIB], [small, HELIA_MIB]]) {
  const fd = openSync(path, 'w')
  const buf = Buffer.alloc(1 << 20)
  for (let m = 0; m < mib; m++) writeSync(fd, randomFillSync(buf))
  closeSync(fd)
}

console.log(`building the native bench (cargo bench --bench data, release with LTO)…`)
execFileSync('cargo', ['bench', '-q', '-p', 'raas-core', '--bench', 'data', '--no-run'], { cwd: root, stdio: 'inherit' })
const gateway = await startGateway([file, small])
const cid = gateway.roots[file]
const smallCid = gateway.roots[small]
const base = `${gateway.url}/honest`

function native(mode, env = {}) {
  const r = spawnSync('cargo', ['bench', '-q', '-p', 'raas-core', '--bench', 'data'], {
    cwd: root, encoding: 'utf8',
    env: { ...process.env, RAAS_BENCH_MODE: mode, RAAS_BENCH_GATEWAY: base, RAAS_BENCH_CID: cid, RAAS_BENCH_FILE: file, ...env },
  })
  if (r.status !== 0) throw new Error(`native ${mode}: ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').at(-1))
}

// One JS measurement in a fresh Node process: prints {bytes, seconds, peakMiB}.
function js(kind) {
  const script = `
    const t = process.hrtime.bigint()
    let bytes = 0
    const kind = ${JSON.stringify(kind)}
    if (kind === 'raas-node retrieve') {
      const { retrieve } = require(${JSON.stringify(join(root, 'bindings-node'))})
      const s = await retrieve(${JSON.stringify(cid)}, { gateways: [${JSON.stringify(base)}] })
      for await (const c of s) bytes += c.length
    } else if (kind === 'raas-node upload') {
      const { RaasNode } = require(${JSON.stringify(join(root, 'bindings-node'))})
      const node = await RaasNode.open({ store: 'sqlite::memory:', blocks: ${JSON.stringify(join(dir, 'node-blocks'))},
        dealStatus: { rpcUrl: 'http://127.0.0.1:1', address: '0x0000000000000000000000000000000000000001' },
        maxUploadBytes: 2 ** 40 })
      const ids = await node.upload(require('node:fs').createReadStream(${JSON.stringify(file)}, { highWaterMark: 1 << 20 }))
      bytes = ids.size
      await node.close()
    } else {
      Promise.withResolvers ??= () => { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b }); return { promise, resolve, reject } }
      const { createVerifiedFetch } = await import('@helia/verified-fetch')
      const vf = await createVerifiedFetch({ gateways: [${JSON.stringify(gateway.url)}], routers: [], allowLocal: true, allowInsecure: true })
      const res = await vf('ipfs://${smallCid}', { signal: AbortSignal.timeout(600_000) })
      for await (const c of res.body) bytes += c.length
      await vf.stop()
    }
    const seconds = Number(process.hrtime.bigint() - t) / 1e9
    console.log(JSON.stringify({ bytes, seconds, mbPerSec: bytes / seconds / 1e6, peakMiB: process.resourceUsage().maxRSS / 1024 }))
    process.exit(0)
  `
  const r = spawnSync('node', ['--input-type=commonjs', '-e', `(async () => { ${script} })()`], { cwd: root, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${kind}: ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').at(-1))
}

// The file's piece, as a storage provider would hold it: the gateway's CAR of the file, its
// CommP computed by the native bench (data-segment takes minutes per GiB), then served by the
// gateway's /piece/ (without the zeros after the CAR, as Boost serves it).
async function registerPiece() {
  const carFile = join(dir, 'piece.car')
  const res = await fetch(`${gateway.url}/car/${cid}`)
  const fd = openSync(carFile, 'w')
  for await (const chunk of res.body) writeSync(fd, chunk)
  closeSync(fd)
  const piece = native('commp', { RAAS_BENCH_FILE: carFile })
  rmSync(carFile)
  const q = new URLSearchParams({ pieceCid: piece.pieceCid, pieceSize: String(piece.pieceSize) })
  await (await fetch(`${gateway.url}/pieceinfo/${cid}?${q}`)).json()
  return { RAAS_BENCH_GATEWAY: `${gateway.url}/piecetrim`, RAAS_BENCH_PIECE_CID: piece.pieceCid,
    RAAS_BENCH_PIECE_SIZE: String(piece.pieceSize) }
}

const rows = []
try {
  const pieceEnv = await registerPiece()
  // A first retrieval warms the gateway's JIT; it is not counted.
  native('retrieve')
  for (const [what, run] of [
    ['native core, retrieve (CAR from the gateway)', () => native('retrieve')],
    ['raas-node, retrieve (CAR from the gateway)', () => js('raas-node retrieve')],
    ['native core, retrieve (/piece from the SP server: CommP, then the CAR)', () => native('piece', pieceEnv)],
    [`@helia/verified-fetch (same gateway, ${HELIA_MIB} MiB)`, () => js('verified-fetch')],
    ['native core, upload (identifiers + block store)', () => native('upload')],
    ['raas-node, upload (a Readable)', () => js('raas-node upload')],
  ]) {
    const r = run()
    const want = (what.startsWith('@helia') ? HELIA_MIB : MIB) * 2 ** 20
    if (r.bytes !== want) throw new Error(`${what}: ${r.bytes} bytes, expected ${want}`)
    rows.push({ what, ...r })
    console.log(`${what}: ${r.mbPerSec.toFixed(0)} MB/s, peak ${r.peakMiB.toFixed(0)} MiB`)
  }
} finally {
  gateway.stop()
  rmSync(dir, { recursive: true, force: true })
}
const helia = rows.find((r) => r.what.startsWith('@helia'))
console.log(`\n${MIB} MiB of random data, one file (verified-fetch: ${HELIA_MIB} MiB); the gateway is a Node process on loopback.\n`)
console.log('| surface | MB/s | peak memory (MiB) | vs verified-fetch |')
console.log('|---|---:|---:|---:|')
for (const r of rows) {
  const vs = r.what.includes('retrieve') ? `${(r.mbPerSec / helia.mbPerSec).toFixed(1)}x` : '—'
  console.log(`| ${r.what} | ${r.mbPerSec.toFixed(0)} | ${r.peakMiB.toFixed(0)} | ${vs} |`)
}
