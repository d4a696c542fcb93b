// Chain-layer benchmark: the reference node's way (one request per CID / per deal) against
// our batched reads, through a proxy that adds a round trip and a rate limit (what public
// endpoints are like) and direct.
//   npm run bench:chain      (needs `npm run build:node`; RAAS_BENCH_N to change 10 000)
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { startDevnet } from '../tests/devnet/devnet.mjs'
import { startProxy, pool, cpuOfPid, fmt, seedDeals } from './bench-lib.mjs'
import { Chain } from '../tests/devnet/lotus-chain.mjs'
import { createLotusServer } from '../tests/devnet/lotus-server.mjs'

const raas = createRequire(import.meta.url)('raas-node')
const N = Number(process.env.RAAS_BENCH_N ?? 10000)
const DEALS_PER_CID = 3
const LATENCY_MS = Number(process.env.RAAS_BENCH_LATENCY_MS ?? 50)
const RPS = Number(process.env.RAAS_BENCH_RPS ?? 50)
const SAMPLE = Math.min(N, Number(process.env.RAAS_BENCH_SAMPLE ?? 500))


console.log(`Chain reads: ${N} CIDs x ${DEALS_PER_CID} deals; proxy ${LATENCY_MS} ms round trip, ${RPS} req/s\n`)

// ---- DealStatus on anvil ------------------------------------------------------------------
const devnet = await startDevnet({ contract: 'DealStatusSeeder' })
const { info } = devnet
const url = info.evmRpc
const h = info.startEpoch
const cids = []
for (let i = 0; i < N; i++) cids.push(raas.computeUnixfsCid(Buffer.from(`bench payload ${i}`)))
process.stdout.write('seeding anvil… ')
const t0 = performance.now()
await seedDeals(devnet, cids, DEALS_PER_CID)
console.log(`done in ${fmt(performance.now() - t0)}`)

const anvilPid = devnet.anvil.child.pid
const client = (rpcUrl) => new raas.DealStatusClient({ rpcUrl, address: info.dealStatus, batchSize: 50, concurrency: 4 })
const check = await client(url).activeDealsMany([cids[0], cids[N - 1]])
if (check.some((c) => c.deals.length !== DEALS_PER_CID)) throw new Error(`seeding failed: ${JSON.stringify(check)}`)

const evm = {}
{
  // Direct: the reference way (one eth_call per CID; bounded so the OS is not flooded).
  const direct = client(url)
  let t = performance.now()
  await pool(cids, 32, (c) => direct.activeDeals(c))
  evm.refDirectMs = performance.now() - t
  // Direct: ours. CPU of this process (our client) vs CPU anvil spends answering.
  const cpu0 = process.cpuUsage()
  const a0 = cpuOfPid(anvilPid)
  t = performance.now()
  const all = await direct.activeDealsMany(cids)
  evm.oursDirectMs = performance.now() - t
  const cpu = process.cpuUsage(cpu0)
  evm.clientCpuMs = (cpu.user + cpu.system) / 1000
  evm.anvilCpuMs = cpuOfPid(anvilPid) - a0
  if (all.length !== N || all.some((c) => c.error || c.deals.length !== DEALS_PER_CID)) throw new Error('batched read wrong')

  const proxy = await startProxy(url, { latencyMs: LATENCY_MS, rps: RPS })
  const slow = client(proxy.url)
  t = performance.now()
  await pool(cids.slice(0, SAMPLE), 1000, (c) => slow.activeDeals(c))
  evm.refProxyMs = ((performance.now() - t) * N) / SAMPLE
  evm.refProxyRequests = (proxy.stats.requests * N) / SAMPLE
  proxy.stats.requests = 0
  t = performance.now()
  await slow.activeDealsMany(cids)
  evm.oursProxyMs = performance.now() - t
  evm.oursProxyRequests = proxy.stats.requests
  proxy.close()
}
await devnet.stop()

// ---- Deal health on the Lotus test server --------------------------------------------------
const chain = new Chain({ height: h })
const dealIds = Array.from({ length: N }, (_, i) => i + 1)
for (const id of dealIds) {
  chain.addDeal({ id, provider: 1000 + (id % 20), sector: id, startEpoch: h - 100, endEpoch: h + 1_000_000,
    pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 })
  chain.activate(id)
}
await chain.advance(100)
const lotusServer = createLotusServer({ chain })
const lotusUrl = await lotusServer.listen()
const lotus = {}
{
  const reference = async (endpoint, id) => {
    const r = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'Filecoin.StateMarketStorageDeal', params: [id, null] }) })
    await r.json()
  }
  let t = performance.now()
  lotusServer.stats.busyMs = 0
  await pool(dealIds, 32, (id) => reference(lotusUrl, id))
  lotus.refDirectMs = performance.now() - t
  lotus.refDirectBusy = lotusServer.stats.busyMs
  const direct = new raas.LotusClient({ url: lotusUrl })
  lotusServer.stats.busyMs = 0
  t = performance.now()
  const reports = await direct.dealHealthMany(dealIds)
  lotus.oursDirectMs = performance.now() - t
  lotus.oursDirectBusy = lotusServer.stats.busyMs
  if (reports.some((r) => r.report?.health.status !== 'active')) throw new Error('health wrong')

  const proxy = await startProxy(lotusUrl, { latencyMs: LATENCY_MS, rps: RPS })
  t = performance.now()
  await pool(dealIds.slice(0, SAMPLE), 1000, (id) => reference(proxy.url, id))
  lotus.refProxyMs = ((performance.now() - t) * N) / SAMPLE
  lotus.refProxyRequests = (proxy.stats.requests * N) / SAMPLE
  proxy.stats.requests = 0
  t = performance.now()
  await new raas.LotusClient({ url: proxy.url }).dealHealthMany(dealIds)
  lotus.oursProxyMs = performance.now() - t
  lotus.oursProxyRequests = proxy.stats.requests
  proxy.close()
}
await lotusServer.close()

const row = (name, ref, refReq, ours, oursReq) =>
  console.log(`${name.padEnd(34)}${fmt(ref).padStart(10)}${String(Math.round(refReq)).padStart(9)}` +
    `${fmt(ours).padStart(10)}${String(oursReq).padStart(7)}${(ref / ours).toFixed(1).padStart(8)}x`)
console.log(`\n${''.padEnd(34)}${'reference'.padStart(10)}${'requests'.padStart(9)}${'ours'.padStart(10)}${'req'.padStart(7)}${'speed-up'.padStart(9)}`)
const batches = Math.ceil(N / 50)
row(`activeDeals, ${N} CIDs, proxy*`, evm.refProxyMs, evm.refProxyRequests, evm.oursProxyMs, evm.oursProxyRequests)
row(`activeDeals, ${N} CIDs, direct`, evm.refDirectMs, N, evm.oursDirectMs, batches)
row(`deal health, ${N} deals, proxy*`, lotus.refProxyMs, lotus.refProxyRequests, lotus.oursProxyMs, lotus.oursProxyRequests)
row(`deal health, ${N} deals, direct`, lotus.refDirectMs, N, lotus.oursDirectMs, '—')
console.log(`\n* the reference way through the proxy is measured on ${SAMPLE} items and scaled to ${N}`)
console.log(`  (it is bound by the rate limit: ${N} requests at ${RPS}/s take at least ${fmt((N / RPS) * 1000)}).`)
console.log(`direct, batched activeDeals: our client used ${fmt(evm.clientCpuMs)} CPU; anvil spent ${fmt(evm.anvilCpuMs)} CPU ` +
  `answering (${((100 * evm.clientCpuMs) / evm.anvilCpuMs).toFixed(1)}%).`)
console.log(`direct deal health: the Lotus test server was busy ${fmt(lotus.oursDirectBusy)} for ours ` +
  `(checks deal, sector, partition, proving deadline) vs ${fmt(lotus.refDirectBusy)} for the reference (deal only).`)
