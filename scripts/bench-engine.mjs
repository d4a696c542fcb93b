// Engine benchmark: N replication jobs (default 100 000), each CID with 3 deals on anvil, one
// full check cycle of a node (`raas cycle`, the release binary) on the embedded store, direct
// and through a proxy adding 50 ms per round trip and admitting 50 requests/s; then the
// reference node's way (one getActiveDeals call per job, each fired from its own timer) on a
// sample, scaled.
//   npm run bench:engine      (RAAS_BENCH_JOBS, RAAS_BENCH_SAMPLE to change 100 000 / 5 000)
import { spawnSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { create as digest } from 'multiformats/hashes/digest'
import { startDevnet } from '../tests/devnet/devnet.mjs'
import { bytesTail, word } from '../tests/devnet/evm.mjs'
import { startProxy, cpuOfPid, fmt, seedDeals } from './bench-lib.mjs'

const N = Number(process.env.RAAS_BENCH_JOBS ?? 100000)
const SAMPLE = Math.min(N, Number(process.env.RAAS_BENCH_SAMPLE ?? 5000))
const LATENCY_MS = 50
const RPS = 50
const DEALS_PER_CID = 3
const repo = fileURLToPath(new URL('..', import.meta.url))

console.log(`Engine: ${N} replication jobs, ${DEALS_PER_CID} deals per CID on anvil; proxy ${LATENCY_MS} ms, ${RPS} req/s\n`)
const build = spawnSync('cargo', ['build', '--release', '-q', '-p', 'raas-core', '--bin', 'raas'], { cwd: repo, stdio: 'inherit' })
if (build.status !== 0) process.exit(1)
const raasBin = join(repo, 'target/release/raas')

// CIDs of distinct payloads (raw leaves, as `ipfs add --cid-version 1` of a small file).
const cids = Array.from({ length: N }, (_, i) =>
  CID.createV1(0x55, digest(0x12, createHash('sha256').update(`engine bench ${i}`).digest())).toString())

// Old states pruned: 100 000 CIDs of seeding would otherwise keep every block's state in memory.
const devnet = await startDevnet({ contract: 'DealStatusSeeder', pruneHistory: 2 })
const { info } = devnet
process.stdout.write('seeding anvil… ')
let t = performance.now()
await seedDeals(devnet, cids, DEALS_PER_CID)
console.log(`done in ${fmt(performance.now() - t)}`)

const dir = mkdtempSync(join(tmpdir(), 'raas-bench-'))
// One job in ten asks for a fourth copy: those are short and write a deal request.
const jobsFile = join(dir, 'jobs.jsonl')
writeFileSync(jobsFile, cids.map((cid, i) => JSON.stringify({ cid, replicationTarget: i % 10 === 0 ? 4 : 3 })).join('\n'))

/** Runs `raas ARGS`, returning its JSON lines and wall time. */
function raas(args) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(raasBin, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('exit', (code) => {
      const lines = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
      const err = lines.find((l) => l.error)
      if (code !== 0 || err) reject(new Error(`raas ${args[0]} failed: ${out}`))
      else resolve({ lines, ms: performance.now() - started })
    })
  })
}

async function cycle(label, evmUrl, lotusUrl) {
  const config = JSON.stringify({
    store: `sqlite:${join(dir, `${label}.db`)}`,
    nodeId: `bench-${label}`,
    dealStatus: { rpcUrl: evmUrl, address: info.dealStatus },
    lotus: { url: lotusUrl },
  })
  const reg = await raas(['register', config, `@${jobsFile}`])
  const anvil0 = cpuOfPid(devnet.anvil.child.pid)
  devnet.lotus.stats.busyMs = 0
  devnet.lotus.stats.requests = 0
  const run = await raas(['cycle', config])
  const anvilCpuMs = cpuOfPid(devnet.anvil.child.pid) - anvil0
  const report = run.lines.find((l) => l.cycle).cycle
  const memory = run.lines.find((l) => l.memory).memory
  if (report.jobsChecked !== N || report.failed !== 0) throw new Error(`cycle incomplete: ${JSON.stringify(report)}`)
  if (report.short !== Math.ceil(N / 10) || report.requestsCreated !== report.short) {
    throw new Error(`wrong verdicts: ${JSON.stringify(report)}`)
  }
  return { registerMs: reg.ms, cycleMs: report.elapsedMs, processMs: run.ms, report, memory, anvilCpuMs,
    lotusBusyMs: devnet.lotus.stats.busyMs, lotusRequests: devnet.lotus.stats.requests }
}

const direct = await cycle('direct', info.evmRpc, info.lotusRpc)
const evmProxy = await startProxy(info.evmRpc, { latencyMs: LATENCY_MS, rps: RPS })
const lotusProxy = await startProxy(info.lotusRpc, { latencyMs: LATENCY_MS, rps: RPS })
const proxied = await cycle('proxy', evmProxy.url, lotusProxy.url)
proxied.evmRequests = evmProxy.stats.requests
proxied.lotusRequests = lotusProxy.stats.requests

// The reference way: every job's check fired from its own timer at once (forEach(async) over
// setInterval), one eth_call getActiveDeals per job, no batching.
async function reference(url) {
  const sample = cids.slice(0, SAMPLE)
  const started = performance.now()
  await Promise.all(sample.map((cid, i) => new Promise((resolve, reject) => {
    setTimeout(async () => {
      try {
        const data = devnet.call('DealStatus', 'getActiveDeals(bytes)', word(32), bytesTail(Buffer.from(cid).toString('hex')))
        const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'eth_call', params: [{ to: info.dealStatus, data }, 'latest'] }) })
        const body = await r.json()
        if (!body.result) throw new Error(JSON.stringify(body))
        resolve()
      } catch (e) { reject(e) }
    }, 0)
  })))
  return ((performance.now() - started) * N) / SAMPLE
}
evmProxy.stats.requests = 0
const refProxyMs = await reference(evmProxy.url)
const refProxyRequests = (evmProxy.stats.requests * N) / SAMPLE
evmProxy.close()
lotusProxy.close()
await devnet.stop()
rmSync(dir, { recursive: true, force: true })

const rate = (ms) => `${Math.round(N / (ms / 1000)).toLocaleString('en-US')} jobs/s`
const kib = (k) => `${(k / 1024).toFixed(1)} MiB`
const perJob = ((direct.memory.peakKiB - direct.memory.baselineKiB) * 1024) / N
const directRequests = Math.ceil(direct.report.contractReads / 50)
console.log(`
| ${N.toLocaleString('en-US')} jobs, one full cycle | direct | through the proxy |
|---|---:|---:|
| cycle time | ${fmt(direct.cycleMs)} | ${fmt(proxied.cycleMs)} |
| jobs checked per second | ${rate(direct.cycleMs)} | ${rate(proxied.cycleMs)} |
| requests sent (DealStatus + Lotus) | ${directRequests} + ${direct.lotusRequests} | ${proxied.evmRequests} + ${proxied.lotusRequests} |
| anvil CPU answering / Lotus test server busy | ${fmt(direct.anvilCpuMs)} / ${fmt(direct.lotusBusyMs)} | ${fmt(proxied.anvilCpuMs)} / — |
| peak memory of the node process (start of cycle) | ${kib(direct.memory.peakKiB)} (${kib(direct.memory.baselineKiB)}) | ${kib(proxied.memory.peakKiB)} |
| of it at the end of the cycle: private (heap, SQLite's page caches) / file pages (SQLite's memory map of the store) | ${kib(direct.memory.endAnonKiB)} / ${kib(direct.memory.endFileKiB)} | ${kib(proxied.memory.endAnonKiB)} / ${kib(proxied.memory.endFileKiB)} |
| registering the jobs (one transaction per 5 000) | ${fmt(direct.registerMs)} | |

The reference way through the proxy (one getActiveDeals per job, each from its own timer),
measured on ${SAMPLE.toLocaleString('en-US')} jobs and scaled to ${N.toLocaleString('en-US')}: ${fmt(refProxyMs)}, ${Math.round(refProxyRequests).toLocaleString('en-US')} requests per cycle.

Targets:
- direct cycle / anvil's time answering our batched reads: ${(direct.cycleMs / direct.anvilCpuMs).toFixed(2)} (target at most 1.5)
- through the proxy, speed-up over the reference way: ${(refProxyMs / proxied.cycleMs).toFixed(1)}x (target at least 20x)
- memory per job: ${Math.max(0, perJob).toFixed(0)} bytes (peak minus start of cycle, over ${N.toLocaleString('en-US')} jobs; target under 2048)`)
