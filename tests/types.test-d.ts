// Compile-time check that both packages expose the same names and result shapes.
import type * as Node from '../bindings-node/main.js'
import type * as Web from '../bindings-wasm/pkg/web/raas_wasm.js'

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const cidsShape: Same<Node.Cids, Web.Cids> = true
// @ts-expect-error the check itself must be able to fail
const sanity: Same<Node.Cids, Web.CidInfo> = true
const infoShape: Same<Node.CidInfo, Web.CidInfo> = true
type NodeCompute = ReturnType<typeof Node.computeCids>
type WebCompute = Awaited<ReturnType<typeof Web.computeCids>>
const computeShape: Same<NodeCompute, WebCompute> = true
const hasherShape: Same<ReturnType<Node.CidHasher["finish"]>, ReturnType<Web.CidHasher['finish']>> = true
const pieceShape: Same<ReturnType<typeof Node.computePieceCid>, ReturnType<typeof Web.computePieceCid>> = true
const unixfsShape: Same<ReturnType<typeof Node.computeUnixfsCid>, ReturnType<typeof Web.computeUnixfsCid>> = true
export { pieceShape, unixfsShape, sanity, cidsShape, infoShape, computeShape, hasherShape }

// The chain clients: same methods, same result shapes.
type NodeDs = Node.DealStatusClient
type WebDs = Web.DealStatusClient
const activeShape: Same<ReturnType<NodeDs['activeDeals']>, ReturnType<WebDs['activeDeals']>> = true
const manyShape: Same<ReturnType<NodeDs['activeDealsMany']>, ReturnType<WebDs['activeDealsMany']>> = true
const healthShape: Same<ReturnType<Node.LotusClient['dealHealth']>, ReturnType<Web.LotusClient['dealHealth']>> = true
const headShape: Same<ReturnType<Node.LotusClient['chainHead']>, ReturnType<Web.LotusClient['chainHead']>> = true
export { activeShape, manyShape, healthShape, headShape }

// The engine (Node only): configuration and job specs are checked, hooks and events typed.
const nodeConfig: Node.RaasNodeConfig = {
  dealStatus: { rpcUrl: 'http://127.0.0.1:8545', address: '0x0000000000000000000000000000000000000001' },
  hook: { type: 'pin', endpoint: 'https://pin.example/api', token: 't' },
}
// @ts-expect-error unknown hook type
const badHook: Node.HookConfig = { type: 'carrierPigeon' }
const spec: Node.JobSpec = { cid: 'bafy', replicationTarget: 3, renewThresholdEpochs: 86400 }
type Hook = Parameters<Node.RaasNode['onDealRequest']>[0]
const hook: Hook = async (req) => ({ cid: req.cid, copies: req.copiesNeeded, key: req.idempotencyKey })
type Listener = Parameters<Node.RaasNode['onVerdict']>[0]
const listener: Listener = (ev) => {
  if (ev.kind === 'verdict') { const s: Node.JobStatus = ev.status; void s; void ev.shortfall?.requested }
  else { const up: boolean = ev.up; void up; void ev.endpoint }
}
// @ts-expect-error an event is a verdict or an endpoint change: narrow on `kind` first
const unnarrowed: Listener = (ev) => { void ev.status }
type Reg = Awaited<ReturnType<Node.RaasNode['registerJob']>>
const regShape: Same<Reg, Node.Registration> = true
export { nodeConfig, badHook, spec, hook, listener, unnarrowed, regShape }

// The HTTP API from Node: serve() resolves a server; handler() mounts in node:http/Express.
declare const served: Node.RaasNode
const listening: Promise<Node.RaasServer> = served.serve({ port: 0 })
const mount: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void = served.handler()
// @ts-expect-error serve() takes no unknown option types
served.serve({ port: '80' })

// Retrieval: the same name and options; a Node Readable and a web ReadableStream, both async
// iterables of Uint8Array chunks.
const retrieveOptions: Same<Omit<Parameters<typeof Node.retrieve>[1] & {}, 'onProgress'>, Omit<Web.RetrieveOptions, 'onProgress'>> = true
type NodeChunk = Awaited<ReturnType<typeof Node.retrieve>> extends AsyncIterable<any> ? true : false
type WebChunk = Awaited<ReturnType<typeof Web.retrieve>> extends ReadableStream<Uint8Array> ? true : false
const nodeIterable: NodeChunk = true
const webStream: WebChunk = true
export { retrieveOptions, nodeIterable, webStream }

// Aggregation: the same functions and shapes in both packages.
const aggShape: Same<ReturnType<typeof Node.aggregate>, ReturnType<typeof Web.aggregate>> = true
const aggArgs: Same<Parameters<typeof Node.aggregate>, Parameters<typeof Web.aggregate>> = true
const inclShape: Same<ReturnType<typeof Node.verifyInclusion>, ReturnType<typeof Web.verifyInclusion>> = true
declare const agg: Node.Aggregate
const proofForComplete: Parameters<Node.DealStatusClient['complete']>[3] = agg.proofs[0]
// @ts-expect-error a v1 piece size is a number
const badPiece: Node.PieceInput = { pieceCid: 'baga', pieceSize: '128' }
export { aggShape, aggArgs, inclShape, proofForComplete, badPiece }
