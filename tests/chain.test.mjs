// The chain layer through the JS packages, against the devnet: our DealStatus contract on
// anvil (market-actor double, Multicall3) and the Lotus test server playing the same chain.
// BACKEND=node runs reads and writes through the napi addon; BACKEND=wasm runs the reads
// through the browser package's Node build (the browser package is read-only).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { startDevnet } from './devnet/devnet.mjs'

const require = createRequire(import.meta.url)
const { backend, raas } = require('./helpers/backend.cjs')
const node = require('raas-node') // writes and setup always go through the addon

const CID_A = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const CID_B = 'bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const PROOF = JSON.parse(readFileSync(new URL('../core/tests/fixtures/podsi-vectors.json', import.meta.url)))[0].proof

let devnet, info, h, request

before(async () => {
  devnet = await startDevnet()
  info = devnet.info
  const writer = new node.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
    privateKey: info.accounts[0].privateKey })
  request = (await writer.submitRaaS(CID_A, 3, 2880, 86400)).requestId
  h = info.startEpoch
  const chain = devnet.chain
  await chain.addDeal({ id: 11, provider: 1000, sector: 1, startEpoch: h, endEpoch: h + 600000,
    pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 })
  await chain.addDeal({ id: 12, provider: 1000, sector: 2, startEpoch: h + 5000, endEpoch: h + 600000,
    pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 })
  await chain.activate(11)
  for (const id of [11, 12]) await writer.complete(request, id, 1000, PROOF)
})

after(async () => devnet?.stop())

const dealStatus = () => new raas.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus })
const lotus = () => new raas.LotusClient({ url: info.lotusRpc })

test(`[${backend}] DealStatusClient reads`, async () => {
  const ds = dealStatus()
  assert.deepEqual(await ds.allDeals(CID_A), [{ dealId: 11, minerId: 1000 }, { dealId: 12, minerId: 1000 }])
  assert.deepEqual(await ds.activeDeals(CID_A), [{ dealId: 11, minerId: 1000 }])
  assert.deepEqual(await ds.expiringDeals(CID_A, 10), [])
  assert.deepEqual(await ds.allCids(), [CID_A])
  const many = await ds.activeDealsMany([CID_A, CID_B])
  assert.deepEqual(many, [
    { cid: CID_A, deals: [{ dealId: 11, minerId: 1000 }], error: null },
    { cid: CID_B, deals: [], error: null },
  ])
  assert.equal(await ds.maxReplications(), null)
  await assert.rejects(ds.activeDeals('nope'), (e) => e.code === 'INVALID_CID' && e instanceof Error)
  await assert.rejects(ds.expiringDeals(CID_A, -1), (e) => e.code === 'INVALID_ARGUMENT' && /epochs/.test(e.message))
})

test(`[${backend}] cidsPage reads the requests' CIDs a page at a time`, async () => {
  const ds = dealStatus()
  const all = await ds.cidsPage(0, 1000)
  assert.ok(all.total >= 1)
  assert.equal(all.cids.length, all.total)
  assert.equal(all.cids[0], CID_A)
  assert.equal(all.next, null)
  const first = await ds.cidsPage(0, 1)
  assert.deepEqual(first, { cids: [CID_A], total: all.total, next: all.total > 1 ? 1 : null })
  assert.deepEqual((await ds.cidsPage(all.total, 5)).cids, [])
  for (const limit of [0, 1001, 1.5]) {
    await assert.rejects(ds.cidsPage(0, limit), (e) => e.code === 'INVALID_ARGUMENT' && /limit/.test(e.message), String(limit))
  }
})

test(`[${backend}] options are validated with field-level errors`, () => {
  assert.throws(() => new raas.DealStatusClient({ rpcUrl: info.evmRpc, address: '0x12' }),
    (e) => e.code === 'INVALID_ADDRESS')
  assert.throws(() => new raas.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus, batchSize: 0 }),
    (e) => e.code === 'INVALID_OPTIONS' && /batchSize/.test(e.message))
  assert.throws(() => new raas.LotusClient({ url: info.lotusRpc, retrys: 2 }),
    (e) => e.code === 'INVALID_OPTIONS' && /retrys/.test(e.message))
})

test(`[${backend}] LotusClient: head, deals and their health`, async () => {
  const l = lotus()
  const head = await l.chainHead()
  assert.ok(head.height >= h && head.cids.length === 1)
  const deal = await l.marketDeal(11)
  assert.equal(deal.proposal.provider, 'f01000')
  assert.equal(deal.proposal.pieceCid, 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy')
  assert.ok(deal.state.sectorStartEpoch >= h)
  await assert.rejects(l.marketDeal(999), (e) => e.code === 'DEAL_NOT_FOUND')
  await devnet.chain.advance(100)
  const report = await l.dealHealth(11)
  assert.deepEqual(report.health, { status: 'active' })
  assert.equal(report.faultCheck, 'checked')
  const many = await l.dealHealthMany([11, 12, 999], [null, null, h + 100000])
  assert.deepEqual(many.map((r) => r.report.health.status), ['active', 'notActivated', 'terminated'])
})

if (backend === 'wasm') {
  test('[wasm] the browser package reads only: a signing key is refused, naming privateKey', () => {
    assert.throws(() => new raas.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
      privateKey: info.accounts[0].privateKey }), (e) => e.code === 'INVALID_ARGUMENT' && /privateKey/.test(e.message))
  })
}

if (backend === 'node') {
  test('[node] writes: receipts, duplicates, reverts with codes', async () => {
    const w = new node.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
      privateKey: info.accounts[0].privateKey })
    const dup = await w.complete(request, 11, 1000, PROOF)
    assert.equal(dup.recorded, false)
    assert.equal(dup.aggregateSize, 34359738368)
    assert.match(dup.aggregatePieceCid, /^baga6ea4seaq/)
    await assert.rejects(w.complete(0, 5, 1000, PROOF), (e) => e.code === 'TX_REVERTED' && /InvalidRequestId/.test(e.message))
    const bad = structuredClone(PROOF)
    bad.inclusionProof.proofIndex.path[0] = '00'.repeat(32)
    await assert.rejects(w.complete(request, 5, 1000, bad), (e) => e.code === 'INVALID_PROOF')
    // The deal itself is checked (by the contract, and before sending when Lotus is given).
    await devnet.chain.addDeal({ id: 13, provider: 1001, sector: 3, startEpoch: h, endEpoch: h + 600000,
      pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 })
    const checked = new node.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
      privateKey: info.accounts[0].privateKey, lotus: { url: info.lotusRpc } })
    for (const c of [w, checked]) {
      await assert.rejects(c.complete(request, 99999, 1000, PROOF), (e) => e.code === 'DEAL_NOT_FOUND' && /99999/.test(e.message))
      await assert.rejects(c.complete(request, 13, 1000, PROOF), (e) => e.code === 'DEAL_MISMATCH' && /f01001/.test(e.message))
    }
    await assert.rejects(checked.complete(request, 13, 1000, PROOF), (e) => /minerId:/.test(e.message))
    assert.equal((await w.complete(request, 13, 1001, PROOF)).recorded, true)
    await assert.rejects(new node.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus }).submit(CID_A),
      (e) => e.code === 'NO_SIGNER')
    const scan = await w.scanRequests({ nextBlock: 0 }, 0, 1e9)
    assert.equal(scan.requests.length, 1)
    assert.deepEqual(scan.requests[0].raas, { replicationTarget: 3, repairThreshold: 2880, renewThreshold: 86400 })
    assert.equal(scan.caughtUp, true)
  })
}

// An endpoint that accepts the connection and never answers: each client gives up after its
// `timeoutMs` with RPC_TIMEOUT (in the wasm package, through the host's setTimeout, and the
// fetch is aborted: a hung endpoint must not hold the browser's few connections to its host),
// and the timer of a call that did answer does not keep the process alive.
test(`[${backend}] an endpoint that never answers: RPC_TIMEOUT after timeoutMs`, async () => {
  const { createServer } = await import('node:net')
  const held = []
  const server = createServer((socket) => held.push(socket))
  // The wasm package calls the global fetch: the signals it passes are kept to check.
  const signals = []
  const fetch = globalThis.fetch
  globalThis.fetch = (url, init) => {
    signals.push(init?.signal)
    return fetch(url, init)
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}/rpc/v1`
  try {
    const started = Date.now()
    const lotusSilent = new raas.LotusClient({ url, timeoutMs: 300, retries: 0 })
    await assert.rejects(lotusSilent.chainHead(), (e) => e.code === 'RPC_TIMEOUT')
    const evmSilent = new raas.DealStatusClient({ rpcUrl: url, address: info.dealStatus, timeoutMs: 300 })
    await assert.rejects(evmSilent.activeDeals(CID_A), (e) => e.code === 'RPC_TIMEOUT')
    const took = Date.now() - started
    assert.ok(took >= 550 && took < 10_000, `${took} ms`)
    if (backend === 'wasm') {
      assert.ok(signals.length >= 2, `${signals.length} fetches`)
      assert.ok(signals.every((s) => s?.aborted), 'a timed-out fetch was not aborted')
    }
    // Calls that answer within a long limit leave no timer behind (a pending one would also
    // keep this process alive for ten minutes).
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const before = timers()
    const patient = new raas.LotusClient({ url: info.lotusRpc, timeoutMs: 600_000 })
    assert.ok((await patient.chainHead()).height >= 0)
    assert.equal(timers(), before, 'a timer outlived its call')
  } finally {
    globalThis.fetch = fetch
    for (const s of held) s.destroy()
    server.close()
  }
})
