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
    await until('every job satisfied', async () => (await Promise.all(jobs.map(job))).every((j) => j.status === 'satisfied'))

    // Each deal is an aggregate holding several clients' pieces; each piece's inclusion was
    // proven to the contract, so every CID shows the deal; Lotus has the aggregate's piece.
    const { info } = a.devnet
    const ds = new DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus })
    const lotus = new LotusClient({ url: info.lotusRpc })
    const { deals } = await (await fetch(`${a.url}/aggregator/deals`)).json()
    assert.ok(deals.length >= 6 && deals.some((d) => d.cids.length > 1), JSON.stringify(deals))
    for (const d of deals) {
      assert.equal((await lotus.marketDeal(d.dealId)).proposal.pieceCid, d.commP)
      for (const cid of d.cids) {
        assert.ok((await ds.allDeals(cid)).some((x) => x.dealId === d.dealId), `${cid} records deal ${d.dealId}`)
      }
    }
    for (const i of ids) assert.ok((await ds.activeDeals(i.cid)).length >= 2)

    // Repair: the first job's CID shares deals with the others, so it has more copies than it
    // asked for; the sectors of all but one are terminated. The node asks once, the
    // aggregator re-deals through the same path, the job is satisfied again.
    const before = (await job(jobs[0])).requests
    const held = await ds.activeDeals(ids[0].cid)
    assert.ok(held.length > 2, 'shared deals count for every CID in them')
    const lost = held.slice(1).map((d) => d.dealId)
    for (const id of lost) await a.devnet.chain.terminate(id)
    await until('a repair request', async () => (await job(jobs[0])).requests > before)
    await until('satisfied again', async () => {
      const j = await job(jobs[0])
      return j.status === 'satisfied' && j.requests > before
    })
    const reqs = await (await fetch(`${a.url}/raas/jobs/${jobs[0]}/requests`)).json()
    assert.deepEqual(reqs.requests.map((q) => [q.reason, q.state]), [['replication', 'fulfilled'], ['repair', 'fulfilled']])
    assert.deepEqual(reqs.requests[1].replacing.sort(), lost.sort())
    const now = (await ds.activeDeals(ids[0].cid)).map((d) => d.dealId)
    assert.ok(now.length >= 2 && lost.every((id) => !now.includes(id)), JSON.stringify(now))
    assert.ok(lines.some((l) => /^repair request/.test(l)), lines.join('\n'))

    // Retrieval: the bytes, verified against the CID.
    const back = Buffer.from(await (await fetch(`${a.url}/raas/retrieve/${ids[1].cid}`)).arrayBuffer())
    assert.ok(back.equals(files[1]))
  } finally {
    await a.close()
  }
})
