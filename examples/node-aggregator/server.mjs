// An aggregator's backend hosting RaaS with raas-node, against the devnet (anvil with the
// DealStatus contract, the Lotus test server). One command: `node examples/node-aggregator/server.mjs`.
//
// - Clients upload files and register jobs through the RaaS API, mounted at /raas
//   (`POST /raas/upload`, `POST /raas/register_jobs`, `GET /raas/jobs/{id}`,
//   `GET /raas/status/{cid}`, `GET /raas/retrieve/{cid}`: see the repository README). Its own
//   route `GET /aggregator/deals` lists the deals it made.
// - Its clients' page is `/` (examples/browser/client.html): CIDs computed in the browser,
//   upload, a job, its deals live from the chain, a verified download.
// - Every deal request of the node (a new job short of copies, a renewal, a repair) comes to
//   `makeDeals`: the bytes fetched verified by CID (`req.data()`), their piece aggregated with
//   the other clients' pieces waiting for a deal (`aggregate`), the deal made (here published
//   and activated through the devnet's controls: where a real aggregator calls Boost or Curio),
//   and `complete` called for every piece in it with its inclusion proof.
import express from 'express'
import { createRequire } from 'node:module'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDevnet } from '../../tests/devnet/devnet.mjs'

const require = createRequire(import.meta.url)
const { RaasNode, DealStatusClient, aggregate, computePieceCid } = require('raas-node')

/** Padded size of the deals this aggregator makes (small, for the devnet). */
const DEAL_SIZE = 2 ** 24
/** Storage providers of the devnet (f01000 …) taking the deals, in turn. */
const PROVIDERS = [1000, 1001, 1002, 1003]

/**
 * Starts the devnet, the RaaS node and the backend. Resolves `{ url, node, devnet, deals,
 * close() }`; `deals` lists every deal made, with its pieces.
 */
export async function start({ port = 8790, dir = mkdtempSync(join(tmpdir(), 'raas-aggregator-')), log = console.log } = {}) {
  const devnet = await startDevnet()
  const { info, chain } = devnet
  const node = await RaasNode.open({
    store: `sqlite:${join(dir, 'raas.db')}`,
    dealStatus: { rpcUrl: info.evmRpc, address: info.dealStatus },
    lotus: { url: info.lotusRpc },
    checkIntervalSecs: 1,
    pollIntervalMs: 100,
    backoffBaseSecs: 1,
  })
  const chainWriter = new DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
    privateKey: info.accounts[0].privateKey })

  // Pieces the aggregator holds (every upload's), by CID: what shares a deal.
  const pieces = new Map()
  const deals = []
  let nextDeal = 1, nextSector = 1

  const build = (members) => aggregate(members.map(([, p]) => ({ pieceCid: p.pieceCid })), { size: DEAL_SIZE })

  /** A deal holding `cid`'s piece and up to 3 other clients' pieces; each inclusion proven. */
  async function makeDeal(cid, piece) {
    // The requested piece alone must fit (or the request fails, retried with backoff, and
    // shows in the node's stats); others join while they still fit.
    let members = [[cid, piece]]
    let agg = build(members)
    for (const other of [...pieces].filter(([c]) => c !== cid).reverse()) {
      if (members.length === 4) break
      try {
        agg = build([...members, other])
        members = [...members, other]
      } catch (e) {
        if (e.code !== 'AGGREGATE_FULL') throw e
      }
    }
    // Here a real aggregator hands `agg.commP` / `agg.pieceSize` (and the bytes, see
    // writeAggregate) to a storage provider through Boost or Curio and waits for the deal id.
    const dealId = nextDeal++
    const provider = PROVIDERS[dealId % PROVIDERS.length]
    const h = chain.height
    await chain.addDeal({ id: dealId, provider, sector: nextSector++, startEpoch: h, endEpoch: h + 518400,
      pieceCid: agg.commP, pieceSize: agg.pieceSize })
    await chain.activate(dealId)
    for (const [i, [memberCid]] of members.entries()) {
      const { requestId } = await chainWriter.submit(memberCid)
      await chainWriter.complete(requestId, dealId, provider, agg.proofs[i])
    }
    deals.push({ dealId, provider, commP: agg.commP, pieceSize: agg.pieceSize, cids: members.map(([c]) => c) })
    log(`deal ${dealId} with f0${provider}: ${agg.commP} holding ${members.length} piece(s), each proven`)
    return dealId
  }

  // Deals are made one at a time: the node may hand over several requests at once, and the
  // deal ids, sectors and chain writes of one deal must not interleave with another's.
  let queue = Promise.resolve()
  const oneAtATime = (fn) => {
    const run = queue.then(fn)
    queue = run.catch(() => {})
    return run
  }

  node.onDealRequest(async (req) => {
    log(`${req.reason} request ${req.seq} for ${req.cid}: ${req.copiesNeeded} deal(s)`)
    // The bytes to store, verified against the CID wherever the node found them.
    const bytes = Buffer.concat(await (await req.data()).toArray())
    const piece = computePieceCid(bytes)
    // Only pieces that can share a deal are kept for sharing.
    if (piece.pieceSize <= DEAL_SIZE / 2) pieces.set(req.cid, piece)
    const made = []
    try {
      for (let i = 0; i < req.copiesNeeded; i++) made.push(await oneAtATime(() => makeDeal(req.cid, piece)))
    } catch (e) {
      // The node retries the request with backoff; the deals already made still count.
      log(`deal for ${req.cid} failed: ${e.code ?? ''} ${e.message}`)
      throw e
    }
    return { deals: made }
  })

  const app = express()
  // Live events stream from the node's own server; the adapter below answers one request at
  // a time, so the stream is relayed from there.
  const direct = await node.serve({ host: '127.0.0.1', port: 0 })
  app.get('/raas/events', async (req, res) => {
    const upstream = new AbortController()
    req.on('close', () => upstream.abort())
    try {
      const last = req.get('last-event-id')
      const r = await fetch(`${direct.url}/events${req.url.slice(req.path.length)}`, {
        headers: last ? { 'last-event-id': last } : {}, signal: upstream.signal })
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/event-stream', 'cache-control': 'no-cache' })
      for await (const chunk of r.body) res.write(chunk)
      res.end()
    } catch {
      res.end()
    }
  })
  // Uploads stream to the node's server too: the adapter takes bodies up to its limit only.
  app.post('/raas/upload', async (req, res) => {
    const headers = {}
    for (const h of ['content-type', 'authorization', 'x-api-key']) if (req.get(h)) headers[h] = req.get(h)
    try {
      const r = await fetch(`${direct.url}/upload`, { method: 'POST', headers, body: req, duplex: 'half' })
      res.status(r.status).type(r.headers.get('content-type') ?? 'application/json').send(Buffer.from(await r.arrayBuffer()))
    } catch (e) {
      res.status(502).json({ error: { code: 'UPLOAD_ABORTED', message: e.message } })
    }
  })
  app.use('/raas', node.handler())
  app.get('/aggregator/deals', (_req, res) => res.json({ deals }))
  // The browser client (examples/browser/client.html) and the browser package it loads;
  // it reads the chain itself, so it is told where the chain is.
  app.get('/aggregator/config', (_req, res) => res.json({ evmRpc: info.evmRpc, dealStatus: info.dealStatus, lotusRpc: info.lotusRpc }))
  const repo = fileURLToPath(new URL('../../', import.meta.url))
  app.use('/bindings-wasm/pkg', express.static(join(repo, 'bindings-wasm', 'pkg')))
  app.use('/app', express.static(join(repo, 'examples', 'browser')))
  app.get('/', (_req, res) => res.redirect('/app/client.html'))
  node.start()
  const server = await new Promise((resolve) => { const s = app.listen(port, '127.0.0.1', () => resolve(s)) })
  const url = `http://127.0.0.1:${server.address().port}`
  log(`aggregator on ${url} (RaaS API at ${url}/raas), devnet anvil ${info.evmRpc}, Lotus ${info.lotusRpc}`)
  return {
    url, node, devnet, deals,
    async close() {
      server.closeAllConnections?.()
      await new Promise((r) => server.close(r))
      await direct.close()
      await node.stop()
      await node.close()
      await devnet.stop()
    },
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const a = await start({ port: Number(process.env.PORT ?? 8790) })
  process.on('SIGINT', async () => { await a.close(); process.exit(0) })
}
