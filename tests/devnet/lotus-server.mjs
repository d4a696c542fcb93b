// Lotus JSON-RPC test server: answers the methods raas uses with the exact shapes and error
// messages of real Lotus (lotus-api notes §1–§2), from a `Chain`. It can be told to be slow,
// to fail, to return garbage, to behave like a gateway without the fault methods, and to
// require a token. `Devnet.*` methods (not Lotus) drive the chain from tests.
import { createServer } from 'node:http'
import { performance } from 'node:perf_hooks'
import { Chain, rle, FAULT_MAX_AGE } from './lotus-chain.mjs'

class RpcError extends Error {
  constructor(code, message, data) {
    super(message)
    this.code = code
    this.data = data
  }
}

const GATEWAY_ABSENT = new Set(['Filecoin.StateMarketDeals', 'Filecoin.StateMinerFaults',
  'Filecoin.StateMinerRecoveries', 'Filecoin.StateMinerPartitions', 'Filecoin.StateSectorPartition',
  'Filecoin.StateSectorExpiration', 'Filecoin.StateMinerActiveSectors', 'Filecoin.StateMinerSectors',
  'Filecoin.StateLookupRobustAddress'])

const TIPSET_CID = 'bafy2bzaceckwkokvwpkxv2ir2yknlmtk6jnmazpukzfyznpszf7qdeepifely'

/** Miner id of an ID address, or the error Lotus gives for it. */
function minerId(addr, method) {
  if (typeof addr !== 'string') {
    throw new RpcError(-32700, `unmarshaling params for '${method}' (param: *address.Address): json: cannot unmarshal ${typeof addr} into Go value of type string`)
  }
  const m = /^[ft]0(\d{1,20})$/.exec(addr)
  if (m) return Number(m[1])
  if (/^[ft][1-4]/.test(addr)) {
    throw new RpcError(1, `resolution lookup failed (${addr}): resolve address ${addr}: actor not found`)
  }
  throw new RpcError(-32700, `unmarshaling params for '${method}' (param: *address.Address): invalid address payload`)
}

function uint(v, method, type) {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RpcError(-32700, `unmarshaling params for '${method}' (param: *abi.${type}): json: cannot unmarshal ${typeof v} into Go value of type abi.${type}`)
  }
  return v
}

export function createLotusServer({ chain = new Chain(), token = null, beforeRequest = null } = {}) {
  const behaviour = { delayMs: 0, failNext: 0, garbageNext: 0, gateway: false, token }
  const stats = { requests: 0, calls: 0, busyMs: 0 }

  const loadMiner = (id, method, prefix = '') => {
    if (!chain.hasMiner(id)) throw new RpcError(1, `${prefix}failed to load miner actor: actor not found`)
  }

  const methods = {
    'Filecoin.ChainHead': { arity: 0, fn: () => tipset(chain.height) },
    'Filecoin.ChainGetTipSetByHeight': { arity: 2, fn: ([h]) => {
      if (h > chain.height) throw new RpcError(1, `looking for tipset with height greater than start point, req: ${h}, head: ${chain.height}`)
      return tipset(h)
    } },
    'Filecoin.StateNetworkVersion': { arity: 1, fn: () => 28 },
    'Filecoin.StateLookupID': { arity: 2, fn: ([addr], m) => {
      const id = minerId(addr, m)
      return `f0${id}`
    } },
    'Filecoin.StateMarketStorageDeal': { arity: 2, fn: ([id], m) => {
      uint(id, m, 'DealID')
      const deal = chain.marketDeal(id)
      if (!deal) throw new RpcError(1, `deal ${id} not found - deal may not have completed sealing before deal proposal start epoch, or deal may have been slashed`)
      return deal
    } },
    'Filecoin.StateSectorGetInfo': { arity: 3, fn: ([addr, n], m) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m, '(get sset) ')
      const s = chain.sector(miner, uint(n, m, 'SectorNumber'))
      if (!s) return null
      return { SectorNumber: s.number, SealProof: 8, SealedCID: { '/': 'bagboea4b5abcbaxt5hdjlxdlrunrdamnk4azdhrinxuni734h2zradcil546k6bi' },
        Activation: s.activation, Expiration: s.expiration, DealWeight: '0', VerifiedDealWeight: '0',
        InitialPledge: '0', ExpectedDayReward: null, ExpectedStoragePledge: null, PowerBaseEpoch: s.activation,
        ReplacedDayReward: null, SectorKeyCID: null, Flags: 1, DailyFee: '0' }
    } },
    'Filecoin.StateSectorPartition': { arity: 3, fn: ([addr, n], m) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      const s = chain.sector(miner, uint(n, m, 'SectorNumber'))
      if (!s) throw new RpcError(1, `sector ${n} not due at any deadline`)
      return { Deadline: s.deadline, Partition: s.partition }
    } },
    'Filecoin.StateSectorExpiration': { arity: 3, fn: ([addr, n], m) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      const s = chain.sector(miner, uint(n, m, 'SectorNumber'))
      if (!s || !chain.isLive(s)) throw new RpcError(1, `failed to find sector ${n}`)
      return { OnTime: s.expiration, Early: chain.isFaulty(s) ? s.faultFrom + FAULT_MAX_AGE : 0 }
    } },
    'Filecoin.StateMinerPartitions': { arity: 3, fn: ([addr, dl], m) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      const sectors = chain.minerSectors(miner).filter((s) => s.deadline === uint(dl, m, 'uint64'))
      if (!sectors.length) return []
      const pick = (f) => rle(sectors.filter(f).map((s) => s.number))
      return [{ AllSectors: pick(() => true), FaultySectors: pick((s) => chain.isFaulty(s)),
        RecoveringSectors: [0], LiveSectors: pick((s) => chain.isLive(s)),
        ActiveSectors: pick((s) => chain.isActive(s)) }]
    } },
    'Filecoin.StateMinerFaults': { arity: 2, fn: ([addr], m) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      return rle(chain.minerSectors(miner).filter((s) => chain.isFaulty(s)).map((s) => s.number))
    } },
    'Filecoin.StateMinerRecoveries': { arity: 2, fn: ([addr], m) => {
      loadMiner(minerId(addr, m), m)
      return [0]
    } },
    'Filecoin.StateMinerProvingDeadline': { arity: 2, fn: ([addr], m) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      return chain.provingDeadline(miner)
    } },
    // Test controls, not Lotus.
    'Devnet.AddDeal': { arity: 1, fn: async ([spec]) => (await chain.addDeal(spec), true) },
    'Devnet.Activate': { arity: 1, fn: async ([id]) => (await chain.activate(id), true) },
    'Devnet.Fault': { arity: 1, fn: async ([id]) => (await chain.fault(id), true) },
    'Devnet.Recover': { arity: 1, fn: async ([id]) => (await chain.recover(id), true) },
    'Devnet.Terminate': { arity: 1, fn: async ([id]) => (await chain.terminate(id), true) },
    'Devnet.Schedule': { arity: 3, fn: ([at, action, args]) => (chain.schedule(at, action, ...args), true) },
    'Devnet.Advance': { arity: 1, fn: async ([n]) => (await chain.advance(n), chain.height) },
    'Devnet.SetBehaviour': { arity: 1, fn: ([b]) => (Object.assign(behaviour, b), behaviour) },
    'Devnet.Stats': { arity: 0, fn: () => ({ ...stats, height: chain.height }) },
    'Devnet.ResetStats': { arity: 0, fn: () => (Object.assign(stats, { requests: 0, calls: 0, busyMs: 0 }), true) },
  }

  function tipset(height) {
    return { Cids: [{ '/': TIPSET_CID }], Blocks: [{ Miner: 'f01000', Parents: [{ '/': TIPSET_CID }],
      ParentWeight: '0', Height: height, ParentStateRoot: { '/': TIPSET_CID },
      ParentMessageReceipts: { '/': TIPSET_CID }, Messages: { '/': TIPSET_CID },
      Timestamp: 1598306400 + 30 * height, ParentBaseFee: '100', ForkSignaling: 0 }], Height: height }
  }

  async function handle(req) {
    if (!String(req?.method).startsWith('Devnet.')) stats.calls++
    const base = { jsonrpc: '2.0', id: req?.id ?? null }
    if (!req || typeof req !== 'object' || typeof req.method !== 'string') {
      return { reply: { ...base, error: { code: -32600, message: 'invalid request' } }, status: 400 }
    }
    const m = methods[req.method]
    if (!m || (behaviour.gateway && GATEWAY_ABSENT.has(req.method))) {
      return { reply: { ...base, error: { code: -32601, message: `method '${req.method}' not found` } }, status: 500 }
    }
    const params = req.params ?? []
    if (!Array.isArray(params) || params.length !== m.arity) {
      const n = Array.isArray(params) ? params.length : 0
      return { reply: { ...base, error: { code: -32602, message: `wrong param count (method '${req.method}'): ${n} != ${m.arity}` } }, status: 500 }
    }
    try {
      return { reply: { ...base, result: await m.fn(params, req.method) }, status: 200 }
    } catch (e) {
      if (e instanceof RpcError) {
        const error = { code: e.code, message: e.message }
        if (e.data !== undefined) error.data = e.data
        return { reply: { ...base, error }, status: e.code === -32700 ? 500 : 200 }
      }
      return { reply: { ...base, error: { code: 1, message: String(e.message ?? e) } }, status: 200 }
    }
  }

  const server = createServer(async (req, res) => {
    res.setHeader('access-control-allow-origin', '*')
    res.setHeader('access-control-allow-headers', 'content-type, authorization')
    res.setHeader('access-control-allow-methods', 'POST, OPTIONS')
    if (req.method === 'OPTIONS') return res.writeHead(204).end()
    if (req.method !== 'POST' || !/^\/rpc\/v[01]\/?$/.test(new URL(req.url, 'http://x').pathname)) {
      return res.writeHead(404).end()
    }
    const chunks = []
    for await (const c of req) chunks.push(c)
    const text = Buffer.concat(chunks).toString('utf8')
    // Test controls are not counted: stats describe what a client asked of "Lotus".
    const control = /^\s*[[{][^]*?"method"\s*:\s*"Devnet\./.test(text)
    if (!control) stats.requests++
    const auth = req.headers.authorization
    if (!control && behaviour.token && auth !== undefined && auth !== `Bearer ${behaviour.token}`) {
      return res.writeHead(401).end() // Lotus: empty body, not JSON
    }
    if (!control && behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs))
    if (!control && behaviour.failNext > 0) {
      behaviour.failNext--
      return res.writeHead(503, { 'content-type': 'text/plain' }).end('service unavailable')
    }
    if (!control && behaviour.garbageNext > 0) {
      behaviour.garbageNext--
      return res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","res')
    }
    if (beforeRequest) await beforeRequest()
    const started = performance.now()
    let body
    try {
      body = JSON.parse(text)
    } catch (e) {
      res.writeHead(500, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: `Parse error: ${e.message}` } }))
    }
    let out
    let status
    if (Array.isArray(body)) {
      // Batches run in order; each element stands alone; HTTP status is 200.
      out = []
      for (const r of body) out.push((await handle(r)).reply)
      status = 200
    } else {
      ;({ reply: out, status } = await handle(body))
    }
    if (!control) stats.busyMs += performance.now() - started
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(out))
  })

  return {
    chain, behaviour, stats, server,
    async listen(port = 0) {
      await new Promise((r) => server.listen(port, '127.0.0.1', r))
      return `http://127.0.0.1:${server.address().port}/rpc/v1`
    },
    close: () => new Promise((r) => server.close(r)),
  }
}
