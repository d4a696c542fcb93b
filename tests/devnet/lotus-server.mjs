// Lotus JSON-RPC test server: answers the methods raas uses with the exact shapes and error
// messages of real Lotus (lotus-api notes §1–§2), from a `Chain`. It can be told to be slow,
// to fail, to return garbage, to behave like a gateway without the fault methods, and to
// require a token. `Devnet.*` methods (not Lotus) drive the chain from tests.
//
// Tipset keys: each height has its own key (a CID derived from the height); state methods
// answer the state at the height of the key they are given (`null`/`[]`: the head) and
// reject a key the server never handed out, as Lotus rejects an unknown tipset.
//
// Behaviours (`Devnet.SetBehaviour [{…}]`, merged into the current ones):
//   delayMs: n          every request waits n ms
//   failNext: n         the next n requests get HTTP 503 with a plain-text body
//   rateLimitNext: n    the next n requests get HTTP 429 with a JSON-RPC error body and a
//                       `Retry-After` header: `retryAfter` (default 1): seconds, a string sent
//                       as is, `{ dateIn: s }` for an HTTP date s seconds ahead, or null (none)
//   unavailableNext: n  the next n requests get HTTP 503 with a JSON-RPC error body
//   garbageNext: n      the next n requests get a truncated JSON body (HTTP 200)
//   hugeNext: n         the next n requests get a well-formed reply of `hugeBytes` bytes
//                       (default 32 MiB), with Content-Length or, with `hugeChunked`, without
//   endlessNext: n      the next n requests get a reply that streams until the client leaves
//   resetNext: n        the next n requests get half a reply, then the connection is reset
//   staleHeight: h      ChainHead keeps answering the tipset at height h (a node out of sync;
//                       null: the real head again)
//   headBack: n         ChainHead answers n epochs below the head (a reorg: the head went back)
//   gateway: true       the fault methods are absent (-32601), as on lotus-gateway
//   token: 'secret'     a wrong Bearer token gets HTTP 401
//   failCalls: [rule]   calls matching a rule fail alone, inside their batch (see `failRule`)
// `Devnet.RequestLog` returns the Lotus calls received ({ method, params }, newest last,
// at most 10 000); `Devnet.ResetStats` clears it with the counters.
import { createServer } from 'node:http'
import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { CID } from 'multiformats/cid'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import { Chain, rle, FAULT_MAX_AGE } from './lotus-chain.mjs'

/** Resolves when `res` can take more, or is gone (listeners removed either way). */
function drained(res) {
  return new Promise((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve() }
    res.on('drain', done)
    res.on('close', done)
  })
}

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

const OTHER_CID = 'bafy2bzaceckwkokvwpkxv2ir2yknlmtk6jnmazpukzfyznpszf7qdeepifely'
const LOG_MAX = 10_000

/** The block CID of height `h` (one block per tipset): dag-cbor + blake2b-256-sized digest. */
function blockCid(h) {
  const digest = createHash('blake2b512').update(`raas devnet tipset ${h}`).digest().subarray(0, 32)
  return CID.create(1, 0x71, Digest.create(0xb220, digest)).toString()
}

/** Whether `params` starts with `prefix` (each element compared as JSON). */
function startsWith(params, prefix = []) {
  return prefix.every((p, i) => JSON.stringify(params[i]) === JSON.stringify(p))
}

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

export function createLotusServer({ chain = new Chain(), token = null, beforeRequest = null, controls = {} } = {}) {
  const behaviour = { delayMs: 0, failNext: 0, garbageNext: 0, rateLimitNext: 0, retryAfter: 1,
    unavailableNext: 0, gateway: false, token, failCalls: [], staleHeight: null, headBack: 0 }
  // The head as ChainHead reports it: stale or gone back when told so.
  const reportedHead = () => Math.max(0, (behaviour.staleHeight ?? chain.height) - (behaviour.headBack ?? 0))
  const stats = { requests: 0, calls: 0, busyMs: 0 }
  const log = [] // { method, params } of the Lotus calls received
  const heights = new Map() // block CID -> height, for every tipset handed out
  const minerAddrs = new Map() // miner id -> its multiaddrs as Lotus sends them (base64)

  const loadMiner = (id, method, prefix = '') => {
    if (!chain.hasMiner(id) && !minerAddrs.has(id)) throw new RpcError(1, `${prefix}failed to load miner actor: actor not found`)
  }

  /** Height of a tipset key parameter: the head for null/[], else the key's own height. */
  const at = (key, method) => {
    if (key === null || key === undefined || (Array.isArray(key) && key.length === 0)) return reportedHead()
    if (!Array.isArray(key) || !key.every((c) => typeof c?.['/'] === 'string')) {
      throw new RpcError(-32700, `unmarshaling params for '${method}' (param: *types.TipSetKey): json: cannot unmarshal ${typeof key} into Go value of type types.TipSetKey`)
    }
    const cids = key.map((c) => c['/'])
    const h = heights.get(cids[0])
    if (h === undefined || cids.length !== 1) {
      const missing = cids.find((c) => !heights.has(c)) ?? cids[1]
      throw new RpcError(1, `loading tipset {${cids.join(',')}}: get block ${missing}: ipld: could not find ${missing}`)
    }
    return h
  }

  // `tsk`: the last param is a tipset key; `fn` gets its height as `h`.
  const methods = {
    'Filecoin.ChainHead': { arity: 0, fn: () => tipset(reportedHead()) },
    'Filecoin.ChainGetTipSetByHeight': { arity: 2, tsk: true, fn: ([wanted], m, h) => {
      if (wanted > h) throw new RpcError(1, `looking for tipset with height greater than start point, req: ${wanted}, head: ${h}`)
      return tipset(wanted)
    } },
    'Filecoin.StateNetworkVersion': { arity: 1, tsk: true, fn: () => 28 },
    'Filecoin.StateLookupID': { arity: 2, tsk: true, fn: ([addr], m) => {
      const id = minerId(addr, m)
      return `f0${id}`
    } },
    'Filecoin.StateMarketStorageDeal': { arity: 2, tsk: true, fn: ([id], m, h) => {
      uint(id, m, 'DealID')
      const deal = chain.marketDeal(id, h)
      if (!deal) throw new RpcError(1, `deal ${id} not found - deal may not have completed sealing before deal proposal start epoch, or deal may have been slashed`)
      return deal
    } },
    'Filecoin.StateSectorGetInfo': { arity: 3, tsk: true, fn: ([addr, n], m, h) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m, '(get sset) ')
      const s = chain.sector(miner, uint(n, m, 'SectorNumber'), h)
      if (!s) return null
      return { SectorNumber: s.number, SealProof: 8, SealedCID: { '/': 'bagboea4b5abcbaxt5hdjlxdlrunrdamnk4azdhrinxuni734h2zradcil546k6bi' },
        Activation: s.activation, Expiration: s.expiration, DealWeight: '0', VerifiedDealWeight: '0',
        InitialPledge: '0', ExpectedDayReward: null, ExpectedStoragePledge: null, PowerBaseEpoch: s.activation,
        ReplacedDayReward: null, SectorKeyCID: null, Flags: 1, DailyFee: '0' }
    } },
    'Filecoin.StateSectorPartition': { arity: 3, tsk: true, fn: ([addr, n], m, h) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      const s = chain.sector(miner, uint(n, m, 'SectorNumber'), h)
      if (!s) throw new RpcError(1, `sector ${n} not due at any deadline`)
      return { Deadline: s.deadline, Partition: s.partition }
    } },
    'Filecoin.StateSectorExpiration': { arity: 3, tsk: true, fn: ([addr, n], m, h) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      const s = chain.sector(miner, uint(n, m, 'SectorNumber'), h)
      if (!s || !chain.isLive(s, h)) throw new RpcError(1, `failed to find sector ${n}`)
      return { OnTime: s.expiration, Early: chain.isFaulty(s, h) ? chain.faultStart(s, h) + FAULT_MAX_AGE : 0 }
    } },
    'Filecoin.StateMinerPartitions': { arity: 3, tsk: true, fn: ([addr, dl], m, h) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      const sectors = chain.minerSectors(miner, h).filter((s) => s.deadline === uint(dl, m, 'uint64'))
      if (!sectors.length) return []
      const pick = (f) => rle(sectors.filter(f).map((s) => s.number))
      return [{ AllSectors: pick(() => true), FaultySectors: pick((s) => chain.isFaulty(s, h)),
        RecoveringSectors: [0], LiveSectors: pick((s) => chain.isLive(s, h)),
        ActiveSectors: pick((s) => chain.isActive(s, h)) }]
    } },
    'Filecoin.StateMinerFaults': { arity: 2, tsk: true, fn: ([addr], m, h) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      return rle(chain.minerSectors(miner, h).filter((s) => chain.isFaulty(s, h)).map((s) => s.number))
    } },
    'Filecoin.StateMinerRecoveries': { arity: 2, tsk: true, fn: ([addr], m) => {
      loadMiner(minerId(addr, m), m)
      return [0]
    } },
    // Lotus's MinerInfo: `Multiaddrs` is null until the owner sets some, then base64 of
    // each binary multiaddr (Go's []byte in JSON).
    'Filecoin.StateMinerInfo': { arity: 2, tsk: true, fn: ([addr], m) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      const owner = `f0${miner + 100000}`
      return { Owner: owner, Worker: owner, NewWorker: '<empty>', ControlAddresses: null,
        WorkerChangeEpoch: -1, PeerId: '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf',
        Multiaddrs: minerAddrs.get(miner) ?? null, WindowPoStProofType: 8, SectorSize: 34359738368,
        WindowPoStPartitionSectors: 2349, ConsensusFaultElapsed: -1, PendingOwnerAddress: null,
        Beneficiary: owner, BeneficiaryTerm: { Quota: '0', UsedQuota: '0', Expiration: 0 },
        PendingBeneficiaryTerm: null }
    } },
    'Filecoin.StateMinerProvingDeadline': { arity: 2, tsk: true, fn: ([addr], m, h) => {
      const miner = minerId(addr, m)
      loadMiner(miner, m)
      return chain.provingDeadline(miner, h)
    } },
    // Test controls, not Lotus.
    'Devnet.AddDeal': { arity: 1, fn: async ([spec]) => (await chain.addDeal(spec), true) },
    'Devnet.Activate': { arity: 1, fn: async ([id]) => (await chain.activate(id), true) },
    'Devnet.Fault': { arity: 1, fn: async ([id]) => (await chain.fault(id), true) },
    'Devnet.Recover': { arity: 1, fn: async ([id]) => (await chain.recover(id), true) },
    'Devnet.Terminate': { arity: 1, fn: async ([id]) => (await chain.terminate(id), true) },
    'Devnet.Schedule': { arity: 3, fn: ([at, action, args]) => (chain.schedule(at, action, ...args), true) },
    // [miner id, [multiaddr text | { base64 }]]: what StateMinerInfo says; raw base64 lets a
    // test send bytes that are no multiaddr.
    'Devnet.SetMinerAddrs': { arity: 2, fn: ([miner, addrs]) => {
      minerAddrs.set(miner, addrs.map((a) => typeof a === 'string' ? Buffer.from(multiaddr(a).bytes).toString('base64') : a.base64))
      return true
    } },
    'Devnet.Advance': { arity: 1, fn: async ([n]) => (await chain.advance(n), chain.height) },
    'Devnet.SetBehaviour': { arity: 1, fn: ([b]) => (Object.assign(behaviour, b), behaviour) },
    'Devnet.Stats': { arity: 0, fn: () => ({ ...stats, height: chain.height }) },
    'Devnet.ResetStats': { arity: 0, fn: () => (Object.assign(stats, { requests: 0, calls: 0, busyMs: 0 }), log.length = 0, true) },
    'Devnet.RequestLog': { arity: 0, fn: () => log },
    // Controls of the devnet around the server (e.g. stopping anvil), `Devnet.*` too.
    ...controls,
  }

  /** The tipset at `height`; its key is remembered so state methods can be asked at it. */
  function tipset(height) {
    const cid = blockCid(height)
    heights.set(cid, height)
    const key = [{ '/': cid }]
    return { Cids: key, Blocks: [{ Miner: 'f01000', Parents: [{ '/': blockCid(height - 1) }],
      ParentWeight: '0', Height: height, ParentStateRoot: { '/': OTHER_CID },
      ParentMessageReceipts: { '/': OTHER_CID }, Messages: { '/': OTHER_CID },
      Timestamp: 1598306400 + 30 * height, ParentBaseFee: '100', ForkSignaling: 0 }], Height: height }
  }

  /**
   * The first `failCalls` rule matching a call, used up once per match when it has `times`:
   * `{ method, params: [prefix…], times, error: { code, message }, result }`. A rule with
   * `result` answers that (e.g. garbage of the wrong shape) instead of an error.
   */
  function failRule(method, params) {
    const rules = behaviour.failCalls ?? []
    const i = rules.findIndex((r) => r.method === method && startsWith(params, r.params) && (r.times ?? 1) > 0)
    if (i < 0) return null
    const rule = rules[i]
    if (rule.times !== undefined) rule.times--
    return rule
  }

  async function handle(req) {
    const lotusCall = !String(req?.method).startsWith('Devnet.')
    if (lotusCall) {
      stats.calls++
      log.push({ method: req?.method, params: req?.params })
      if (log.length > LOG_MAX) log.shift()
    }
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
    const rule = lotusCall ? failRule(req.method, params) : null
    if (rule) {
      if ('result' in rule) return { reply: { ...base, result: rule.result }, status: 200 }
      const error = rule.error ?? { code: 1, message: `simulated failure of ${req.method}` }
      return { reply: { ...base, error }, status: 200 }
    }
    try {
      const h = m.tsk ? at(params[m.arity - 1], req.method) : chain.height
      return { reply: { ...base, result: await m.fn(params, req.method, h) }, status: 200 }
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
    // Browsers hide these from scripts unless exposed; the client needs them for Retry-After.
    res.setHeader('access-control-expose-headers', 'retry-after, date')
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
    if (!control && behaviour.rateLimitNext > 0) {
      behaviour.rateLimitNext--
      const headers = { 'content-type': 'application/json' }
      const ra = behaviour.retryAfter
      if (ra !== null && ra !== undefined) {
        headers['retry-after'] = typeof ra === 'object' ? new Date(Date.now() + ra.dateIn * 1000).toUTCString() : String(ra)
      }
      return res.writeHead(429, headers)
        .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: 429, message: 'too many requests' } }))
    }
    if (!control && behaviour.unavailableNext > 0) {
      behaviour.unavailableNext--
      return res.writeHead(503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'service unavailable: node is not synced' } }))
    }
    if (!control && behaviour.garbageNext > 0) {
      behaviour.garbageNext--
      return res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","res')
    }
    if (!control && behaviour.hugeNext > 0) {
      // A well-formed reply of `hugeBytes` bytes, announced by Content-Length or (with
      // `hugeChunked`) not, as a misbehaving proxy or a node answering a vast query would.
      behaviour.hugeNext--
      const n = behaviour.hugeBytes ?? (32 << 20)
      const head = '{"jsonrpc":"2.0","id":1,"result":"'
      const tail = '"}'
      const pad = Math.max(0, n - head.length - tail.length)
      const headers = { 'content-type': 'application/json' }
      if (!behaviour.hugeChunked) headers['content-length'] = String(head.length + pad + tail.length)
      res.writeHead(200, headers)
      res.write(head)
      const block = 'x'.repeat(64 << 10)
      let left = pad
      while (left > 0 && !res.destroyed) {
        const part = left >= block.length ? block : block.slice(0, left)
        left -= part.length
        if (!res.write(part)) await drained(res)
      }
      return res.end(tail)
    }
    if (!control && behaviour.endlessNext > 0) {
      // A reply that never ends: chunks until the client goes away.
      behaviour.endlessNext--
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"jsonrpc":"2.0","id":1,"result":"')
      const block = 'y'.repeat(64 << 10)
      while (!res.destroyed) {
        if (!res.write(block)) await drained(res)
      }
      return
    }
    if (!control && behaviour.resetNext > 0) {
      // The connection is reset mid-body: half of an announced reply, then RST.
      behaviour.resetNext--
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' })
      res.write('{"jsonrpc":"2.0","id":1,"result":{"Height":')
      await new Promise((r) => setTimeout(r, 20))
      return res.socket?.resetAndDestroy ? res.socket.resetAndDestroy() : res.socket?.destroy()
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
