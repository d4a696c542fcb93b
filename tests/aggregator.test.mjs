// The example aggregator (examples/node-aggregator) end to end, as its clients use it over
// HTTP: uploads, jobs through /raas/register_jobs, deals made by aggregating the clients'
// pieces with inclusion proofs the contract accepts, a repair through the same deal-making,
// and verified retrieval. Runs once (BACKEND=node).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { start } from '../examples/node-aggregator/server.mjs'

const require = createRequire(import.meta.url)
const { backend } = require('./helpers/backend.cjs')
const { DealStatusClient, LotusClient, computeCids } = require('raas-node')
const skip = backend !== 'node' && 'the example runs once, in the node pass'

async function until(what, fn, ms = 30000) {
  for (const t = Date.now(); ;) {
    const v = await fn()
    if (v) return v
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('the example aggregator: upload, register, aggregate with proofs, repair, retrieve', { skip }, async () => {
  const lines = []
  const a = await start({ port: 0, log: (l) => lines.push(l) })
  try {
    const files = ['first client file', 'second client file, a little longer', 'third'].map((s) => Buffer.from(s.repeat(500)))
    const ids = []
    for (const f of files) {
      const r = await fetch(`${a.url}/raas/upload`, { method: 'POST', body: f })
      assert.equal(r.status, 201)
      const got = await r.json()
      assert.equal(got.cid, computeCids(f).cid)
      ids.push(got)
    }
    const r = await fetch(`${a.url}/raas/register_jobs`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ids.map((i) => ({ cid: i.cid, replicationTarget: 2, repairThresholdEpochs: 500 }))) })
    assert.equal(r.status, 201)
    const jobs = (await r.json()).registrations.map((x) => x.job.jobId)
    const job = async (id) => (await (await fetch(`${a.url}/raas/jobs/${id}`)).json())
    const requestsOf = async (id) => (await (await fetch(`${a.url}/raas/jobs/${id}/requests`)).json()).requests
    // Satisfied and every request served: a job can be satisfied by deals made for the others
    // while its own request is still being served.
    const settled = () => until('every job satisfied, its requests served', async () => {
      const all = await Promise.all(jobs.map(async (id) => ({ job: await job(id), requests: await requestsOf(id) })))
      return all.every((x) => x.job.status === 'satisfied' && x.requests.every((q) => q.state === 'fulfilled')) && all
    })
    await settled()

    // Each deal is an aggregate holding several clients' pieces; each piece's inclusion was
    // proven to the contract, so every CID shows the deal; Lotus has the aggregate's piece.
    const { info } = a.devnet
    const ds = new DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus })
    const lotus = new LotusClient({ url: info.lotusRpc })
    const { deals } = await (await fetch(`${a.url}/aggregator/deals`)).json()
    // Shared deals count for every CID in them, so how many deals three jobs of two copies
    // take depends on the order requests arrive; every CID is in two, some deal holds several.
    assert.ok(deals.some((d) => d.cids.length > 1), JSON.stringify(deals))
    for (const i of ids) assert.ok(deals.filter((d) => d.cids.includes(i.cid)).length >= 2, JSON.stringify(deals))
    for (const d of deals) {
      assert.equal((await lotus.marketDeal(d.dealId)).proposal.pieceCid, d.commP)
      for (const cid of d.cids) {
        assert.ok((await ds.allDeals(cid)).some((x) => x.dealId === d.dealId), `${cid} records deal ${d.dealId}`)
      }
    }
    for (const i of ids) assert.ok((await ds.activeDeals(i.cid)).length >= 2)

    // Repair: the first job's CID shares deals with the others, so it has more copies than it
    // asked for; the sectors of all but one are terminated. Every CID that falls short is asked
    // for once, the aggregator re-deals through the same path, every job is satisfied again.
    // Which jobs ask depends on timing: a repair deal made for one CID also holds the others'
    // pieces, and may heal them before their next check.
    const before = await Promise.all(jobs.map(async (id) => (await requestsOf(id)).length))
    const held = await ds.activeDeals(ids[0].cid)
    assert.ok(held.length > 2, 'shared deals count for every CID in them')
    const lost = held.slice(1).map((d) => d.dealId)
    for (const id of lost) await a.devnet.chain.terminate(id)
    await until('a repair request', async () => (await Promise.all(jobs.map(requestsOf))).some((q, k) => q.length > before[k]))
    let repaired = 0
    for (const [k, { requests }] of (await settled()).entries()) {
      assert.deepEqual(requests.slice(0, before[k]).map((q) => q.reason), ['replication'])
      for (const q of requests.slice(before[k])) {
        repaired++
        assert.equal(q.reason, 'repair', JSON.stringify(q))
        assert.ok(q.replacing.length > 0 && q.replacing.every((id) => lost.includes(id)), JSON.stringify(q))
      }
    }
    assert.ok(repaired > 0 && repaired <= jobs.length, `${repaired} repair requests`)
    for (const i of ids) {
      const now = (await ds.activeDeals(i.cid)).map((d) => d.dealId)
      assert.ok(now.length >= 2 && lost.every((id) => !now.includes(id)), `${i.cid}: ${JSON.stringify(now)}`)
    }
    assert.ok(lines.some((l) => /^repair request/.test(l)), lines.join('\n'))

    // Retrieval: the bytes, verified against the CID.
    const back = Buffer.from(await (await fetch(`${a.url}/raas/retrieve/${ids[1].cid}`)).arrayBuffer())
    assert.ok(back.equals(files[1]))
  } catch (e) {
    e.message += `\n${lines.join('\n')}`
    throw e
  } finally {
    await a.close()
  }
})
