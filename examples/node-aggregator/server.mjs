// An aggregator's backend hosting RaaS with raas-node, against the devnet (anvil with the
// DealStatus contract, the Lotus test server). One command: `node examples/node-aggregator/server.mjs`.
//
// - Clients upload files and register jobs through the RaaS API, mounted at /raas
//   (`POST /raas/upload`, `POST /raas/register_jobs`, `GET /raas/jobs/{id}`,
//   `GET /raas/status/{cid}`, `GET /raas/retrieve/{cid}`: see the repository README). Its own
//   route `GET /aggregator/deals` lists the deals it made.
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

  /** A deal holding `cid`'s piece and up to 3 other clients' pieces; each inclusion proven. */
  async function makeDeal(cid, piece) {
    const members = [[cid, piece], ...[...pieces].filter(([c]) => c !== cid).slice(-3)]
    const agg = aggregate(members.map(([, p]) => ({ pieceCid: p.pieceCid })), { size: DEAL_SIZE })
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

  node.onDealRequest(async (req) => {
    log(`${req.reason} request ${req.seq} for ${req.cid}: ${req.copiesNeeded} deal(s)`)
    // The bytes to store, verified against the CID wherever the node found them.
    const bytes = Buffer.concat(await (await req.data()).toArray())
    const piece = computePieceCid(bytes)
    pieces.set(req.cid, piece)
    const made = []
    for (let i = 0; i < req.copiesNeeded; i++) made.push(await makeDeal(req.cid, piece))
    return { deals: made }
  })

  const app = express()
  app.use('/raas', node.handler())
  app.get('/aggregator/deals', (_req, res) => res.json({ deals }))
  node.start()
  const server = await new Promise((resolve) => { const s = app.listen(port, '127.0.0.1', () => resolve(s)) })
  const url = `http://127.0.0.1:${server.address().port}`
  log(`aggregator on ${url} (RaaS API at ${url}/raas), devnet anvil ${info.evmRpc}, Lotus ${info.lotusRpc}`)
  return {
    url, node, devnet, deals,
    async close() {
      await new Promise((r) => server.close(r))
      await node.stop()
      await node.close()
      await devnet.stop()
    },
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const a = await start({ port: Number(process.env.PORT ?? 8790) })
  process.on('SIGINT', async () => { await a.close(); process.exit(0) })
}
