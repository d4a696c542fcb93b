// Shared pieces of the benchmarks: a latency/rate-limit proxy, a bounded pool, CPU time of a
// process, ABI encoding of arrays, and the bulk seeding of DealStatus + market double.
import { createServer } from 'node:http'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { send, word } from '../tests/devnet/evm.mjs'

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A proxy adding `latencyMs` per round trip and admitting at most `rps` requests/s. */
export async function startProxy(target, { latencyMs, rps }) {
  const stats = { requests: 0 }
  let nextSlot = 0
  const server = createServer(async (req, res) => {
    const chunks = []
    for await (const c of req) chunks.push(c)
    stats.requests++
    const now = performance.now()
    const slot = Math.max(now, nextSlot)
    nextSlot = slot + 1000 / rps
    await sleep(slot - now + latencyMs / 2)
    const upstream = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: Buffer.concat(chunks) })
    const body = Buffer.from(await upstream.arrayBuffer())
    await sleep(latencyMs / 2)
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${server.address().port}${new URL(target).pathname}`, stats,
    close: () => server.close() }
}

/** Runs `fn` over `items` with at most `limit` in flight (the reference fires them all). */
export async function pool(items, limit, fn) {
  let i = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await fn(items[i++])
  }))
}

export function cpuOfPid(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) * 10 // utime + stime, clock ticks of 10 ms
}

export function encodeBytesArray(hexes) {
  const heads = []
  const tails = []
  let offset = hexes.length * 32
  for (const h of hexes) {
    const len = h.length / 2
    const tail = word(len) + h.padEnd(Math.ceil(len / 32) * 64, '0')
    heads.push(word(offset))
    tails.push(tail)
    offset += tail.length / 2
  }
  return word(hexes.length) + heads.join('') + tails.join('')
}

export function encodeArray(values) {
  return word(values.length) + values.map(word).join('')
}

export const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`)

/**
 * Seeds `cids` on a `DealStatusSeeder` devnet with `dealsPerCid` deals each (ids from 1), all
 * active on the market double from `startEpoch - 100` for 1 000 000 epochs. Big transactions:
 * anvil's cost per block grows with the state, so fewer blocks seed faster.
 */
export async function seedDeals(devnet, cids, dealsPerCid, { cidsPerTx = 2000, dealsPerTx = 5000 } = {}) {
  const { info, owner, devAccounts, call } = devnet
  const url = info.evmRpc
  const h = info.startEpoch
  const N = cids.length
  for (let i = 0; i < N; i += cidsPerTx) {
    const batch = cids.slice(i, i + cidsPerTx).map((c) => Buffer.from(c).toString('hex'))
    const data = call('DealStatusSeeder', 'seed(bytes[],uint64,uint64,uint64)', word(128), word(dealsPerCid),
      word(1 + i * dealsPerCid), word(1000), encodeBytesArray(batch))
    await send(url, devAccounts[0], info.dealStatus, data, '0x3b9aca00')
    if (N >= 20000 && (i / cidsPerTx) % 10 === 9) process.stdout.write(`${i + cidsPerTx} `)
  }
  for (let first = 1; first <= N * dealsPerCid; first += dealsPerTx) {
    const ids = Array.from({ length: Math.min(dealsPerTx, N * dealsPerCid - first + 1) }, (_, k) => first + k)
    const arrays = [ids, ids.map(() => h - 100), ids.map(() => h - 100), ids.map(() => 1_000_000)].map(encodeArray)
    let offset = 5 * 32
    const heads = arrays.map((a) => { const w = word(offset); offset += a.length / 2; return w })
    const data = call('MarketState', 'setDeals(uint64[],int64[],int64[],int64[],uint64)', ...heads, word(1000), ...arrays)
    await send(url, owner, info.marketState, data, '0x3b9aca00')
  }
}
