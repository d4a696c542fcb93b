// The browser package's chain reads in headless Chromium, from the page, against anvil and
// the Lotus test server on localhost (cross-origin, as a real page calls public endpoints).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { startDevnet } from '../devnet/devnet.mjs'
import { startServer, openPage } from '../helpers/browser.mjs'

const node = createRequire(import.meta.url)('raas-node')
const CID = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const PROOF = JSON.parse(readFileSync(new URL('../../core/tests/fixtures/podsi-vectors.json', import.meta.url)))[0].proof

let devnet, server, browser, page, errors

before(async () => {
  devnet = await startDevnet()
  const { info, chain } = devnet
  const writer = new node.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
    privateKey: info.accounts[0].privateKey })
  const { requestId } = await writer.submit(CID)
  const h = info.startEpoch
  const piece = { pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 }
  await chain.addDeal({ id: 41, provider: 1000, sector: 1, startEpoch: h, endEpoch: h + 600000, ...piece })
  await chain.addDeal({ id: 42, provider: 1001, sector: 2, startEpoch: h, endEpoch: h + 600000, ...piece })
  await chain.activate(41)
  await chain.activate(42)
  for (const [id, miner] of [[41, 1000], [42, 1001]]) await writer.complete(requestId, id, miner, PROOF)
  await chain.advance(100)
  await chain.fault(42)
  await chain.advance(10)
  const started = await startServer()
  server = started.server
  ;({ browser, page, errors } = await openPage(started.url))
})

after(async () => {
  await browser?.close()
  server?.close()
  await devnet?.stop()
})

test('[chromium] DealStatusClient and LotusClient read the chain from the page', async () => {
  const { info } = devnet
  const got = await page.evaluate(async ({ info, cid }) => {
    const { DealStatusClient, LotusClient } = window.raas
    const ds = new DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus })
    const lotus = new LotusClient({ url: info.lotusRpc })
    const active = await ds.activeDeals(cid)
    const many = await ds.activeDealsMany([cid])
    const health = await lotus.dealHealthMany(active.map((d) => d.dealId))
    let missing
    try { await lotus.marketDeal(9999) } catch (e) { missing = e.code }
    let refused
    try {
      await new LotusClient({ url: 'http://127.0.0.1:9/rpc/v1', retries: 0 }).chainHead()
    } catch (e) { refused = { code: e.code, message: e.message } }
    return { active, many, health, missing, refused }
  }, { info, cid: CID })
  assert.deepEqual(got.active, [{ dealId: 41, minerId: 1000 }, { dealId: 42, minerId: 1001 }])
  assert.deepEqual(got.many[0].deals, got.active)
  assert.deepEqual(got.health.map((r) => r.report.health.status), ['active', 'faulty'])
  assert.equal(got.health[1].report.faultCheck, 'checked')
  assert.equal(got.missing, 'DEAL_NOT_FOUND')
  assert.equal(got.refused.code, 'NETWORK')
  assert.match(got.refused.message, /unreachable|cross-origin/)
  assert.deepEqual(errors, [])
})
