// A local IPFS trustless gateway for the retrieval tests, built from npm parts nobody here
// wrote: files imported with ipfs-unixfs-importer as `ipfs add --cid-version=1` lays them
// out, CARs (from `ipfs-car pack`) read with @ipld/car, DAG-PB links read with @ipld/dag-pb,
// CAR responses written with @ipld/car's CarWriter in depth-first order with duplicates, as
// `GET /ipfs/{cid}?format=car&dag-scope=all` with `order=dfs; dups=y` asks.
//
// Beside the honest gateway, one hostile gateway per way a source can fail, by path prefix:
//   /honest      the trustless-gateway answers (CAR and raw blocks); also with no prefix
//   /flip        one byte flipped in the last block of the DAG (CAR and raw)
//   /truncate    a 200 CAR cut after half its blocks; raw blocks 404
//   /wrongroot   the CAR of another file; raw blocks 404
//   /extra       unrelated blocks between the DAG's blocks
//   /endless     after the header, one unrelated block forever
//   /drip        the honest CAR one byte every 50 ms
//   /error500    500 for everything
//   /blocksonly  406 for CARs; raw blocks served
//   /notfound    404 for everything
//
// It is also a storage provider's HTTP server: `GET /{mode}/piece/{pieceCid}` serves a
// deal's piece, the exact bytes a provider's `/piece/` endpoint serves (the payload CAR, then
// zeros up to the piece's unpadded size). The CAR is the file `ipfs-car pack` wrote, or for
// other files one written leaves first, as ipfs-car lays them out. `GET /pieceinfo/{root}`
// says which piece that is ({ pieceCid, pieceSize }, by @web3-storage/data-segment); the
// piece is twice the smallest size that holds the CAR, as deals padded to a minimum are.
// For benches, where data-segment is far too slow for a GiB: `GET /car/{root}` gives that
// CAR, and `GET /pieceinfo/{root}?pieceCid=…&pieceSize=…` takes the piece as given.
// Piece modes (their /ipfs/ answers 404, so only the piece can serve):
//   /pieceonly   the honest piece
//   /pieceflip   one byte of the CAR flipped (its CommP no longer matches)
//   /piecetrim   the CAR without the zeros after it (Boost trims them; still the same piece)
// and in other modes: honest, except notfound (404), error500 (500), truncate (half, 200).
//
//   node tests/devnet/gateway.mjs FILE|CAR ...
// prints {"url": "...", "roots": {"FILE": "cid", ...}} on its first line, then serves until
// killed (or until stdin closes, so a test's crash cannot leave it running).
import http from 'node:http'
import { readFile } from 'node:fs/promises'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core'
import { CarReader, CarWriter } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { Piece } from '@web3-storage/data-segment'
import { IPFS_ADD_V1 } from '../helpers/reference.mjs'

const store = new MemoryBlockstore()
const roots = {}
const carFiles = new Map() // root -> the CAR file's bytes, for roots that came as CARs
for (const path of process.argv.slice(2)) {
  if (path.endsWith('.car')) {
    const bytes = await readFile(path)
    const car = await CarReader.fromBytes(bytes)
    for await (const { cid, bytes } of car.blocks()) await store.put(cid, bytes)
    roots[path] = (await car.getRoots())[0].toString()
    carFiles.set(roots[path], bytes)
  } else {
    let root
    for await (const entry of importer([{ content: await readFile(path) }], store, IPFS_ADD_V1)) root = entry.cid
    roots[path] = root.toString()
  }
}

// blockstore-core answers a Uint8Array, a promise of one, or an iterable of chunks.
const get = async (cid) => {
  const got = await store.get(cid)
  if (got instanceof Uint8Array) return got
  const chunks = []
  for await (const c of got) chunks.push(c)
  return Uint8Array.from(Buffer.concat(chunks))
}
const has = async (cid) => store.has(cid)

/** The DAG's blocks in depth-first order, duplicates included. */
async function* dfs(cid) {
  const bytes = await get(cid)
  yield { cid, bytes }
  if (cid.code === dagPb.code) {
    for (const link of dagPb.decode(bytes).Links) yield* dfs(link.Hash)
  }
}

async function collect(cid) {
  const out = []
  for await (const b of dfs(cid)) out.push(b)
  return out
}

const unrelated = async (i) => {
  const bytes = new TextEncoder().encode(`unrelated block ${i} `.repeat(64))
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

const flipLast = (blocks) => {
  const last = blocks.length - 1
  return blocks.map((b, i) => {
    if (i !== last) return b
    const bytes = Uint8Array.from(b.bytes)
    if (bytes.length === 0) return { cid: b.cid, bytes: Uint8Array.of(1) }
    bytes[bytes.length >> 1] ^= 0x01
    return { cid: b.cid, bytes }
  })
}

/** Writes a CAR of `blocks` with `root` in its header to `res`, through `pace`. */
async function sendCar(res, root, blocks, pace) {
  res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=y' })
  const { writer, out } = CarWriter.create([root])
  const pump = (async () => {
    for await (const chunk of out) {
      if (res.destroyed) return
      await pace(chunk)
    }
  })()
  for await (const b of blocks) {
    if (res.destroyed) break
    await writer.put(b)
  }
  await writer.close()
  await pump
  res.end()
}

/** The DAG's blocks children first, each once (ipfs-car's order). */
async function leavesFirst(cid, seen = new Set(), out = []) {
  if (seen.has(cid.toString())) return out
  seen.add(cid.toString())
  const bytes = await get(cid)
  if (cid.code === dagPb.code) {
    for (const link of dagPb.decode(bytes).Links) await leavesFirst(link.Hash, seen, out)
  }
  out.push({ cid, bytes })
  return out
}

const pieces = new Map() // piece CID -> { car, size }, filled by /pieceinfo/
const cars = new Map() // root -> the CAR written for it
async function carOf(root) {
  let car = carFiles.get(root.toString()) ?? cars.get(root.toString())
  if (!car) {
    const { writer, out } = CarWriter.create([root])
    const chunks = []
    const pump = (async () => { for await (const c of out) chunks.push(c) })()
    for (const b of await leavesFirst(root)) await writer.put(b)
    await writer.close()
    await pump
    car = Buffer.concat(chunks)
    cars.set(root.toString(), car)
  }
  return car
}

async function pieceInfo(rootText, given) {
  const root = CID.parse(rootText)
  const car = await carOf(root)
  if (given.get('pieceCid')) {
    const info = { pieceCid: given.get('pieceCid'), pieceSize: Number(given.get('pieceSize')) }
    pieces.set(info.pieceCid, { car, size: info.pieceSize })
    return info
  }
  const size = Number(Piece.toInfo(Piece.fromPayload(car)).size) * 2
  const filled = new Uint8Array((size / 128) * 127)
  filled.set(car)
  const pieceCid = Piece.toInfo(Piece.fromPayload(filled)).link.toString()
  pieces.set(pieceCid, { car, size })
  return { pieceCid, pieceSize: size }
}

async function servePiece(mode, pieceText, res) {
  const piece = pieces.get(pieceText)
  if (!piece || mode === 'notfound') {
    res.writeHead(404, { 'content-type': 'text/plain' })
    return res.end('piece not found')
  }
  if (mode === 'error500') {
    res.writeHead(500, { 'content-type': 'text/plain' })
    return res.end('internal error')
  }
  let body = piece.car
  if (mode !== 'piecetrim') {
    body = new Uint8Array((piece.size / 128) * 127)
    body.set(piece.car)
    if (mode === 'pieceflip') body[piece.car.length >> 1] ^= 0x01
  }
  if (mode === 'truncate') body = body.subarray(0, body.length >> 1)
  res.writeHead(200, { 'content-type': 'application/piece', 'content-length': body.length })
  res.end(body)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const write = (res) => (chunk) => new Promise((resolve) => {
  if (res.destroyed || res.write(chunk)) resolve()
  else res.once('drain', resolve)
})

async function serve(mode, cidText, wantsCar, res) {
  const notFound = () => {
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found')
  }
  if (mode === 'error500') {
    res.writeHead(500, { 'content-type': 'text/plain' })
    return res.end('internal error')
  }
  if (mode === 'notfound' || mode.startsWith('piece')) return notFound()
  let cid
  try {
    cid = CID.parse(cidText)
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' })
    return res.end('bad cid')
  }
  if (!wantsCar) {
    if (['truncate', 'wrongroot'].includes(mode) || !(await has(cid))) return notFound()
    let bytes = await get(cid)
    if (mode === 'flip') {
      const root = Object.values(roots).map((r) => CID.parse(r))
      for (const r of root) {
        const blocks = await collect(r)
        if (blocks.at(-1).cid.equals(cid)) bytes = flipLast(blocks).at(-1).bytes
      }
    }
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw', 'content-length': bytes.length })
    return res.end(bytes)
  }
  if (mode === 'blocksonly') {
    res.writeHead(406, { 'content-type': 'text/plain' })
    return res.end('CARs not served')
  }
  if (mode === 'endless') {
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' })
    const { writer, out } = CarWriter.create([cid])
    const block = await unrelated(0)
    const pump = (async () => { for await (const chunk of out) await write(res)(chunk) })()
    while (!res.destroyed) await writer.put(block)
    await writer.close().catch(() => {})
    await pump.catch(() => {})
    return
  }
  if (mode === 'wrongroot') {
    const other = Object.values(roots).map((r) => CID.parse(r)).find((r) => !r.equals(cid))
    return sendCar(res, cid, await collect(other), write(res))
  }
  if (!(await has(cid))) return notFound()
  let blocks = await collect(cid)
  if (mode === 'flip') blocks = flipLast(blocks)
  if (mode === 'truncate') blocks = blocks.slice(0, Math.max(1, blocks.length >> 1))
  if (mode === 'extra') {
    const mixed = []
    for (const [i, b] of blocks.entries()) mixed.push(await unrelated(i), b)
    blocks = mixed
  }
  const pace = mode === 'drip'
    ? async (chunk) => { for (const byte of chunk) { await write(res)(Uint8Array.of(byte)); await sleep(50) } }
    : write(res)
  return sendCar(res, cid, blocks, pace)
}

const server = http.createServer((req, res) => {
  if (process.env.GATEWAY_LOG) console.error(req.method, req.url, req.headers.accept)
  // Pages on other origins (the browser package's tests) may read it, as public gateways allow.
  res.setHeader('access-control-allow-origin', '*')
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { 'access-control-allow-headers': 'accept', 'access-control-allow-methods': 'GET' })
    return res.end()
  }
  const url = new URL(req.url, 'http://x')
  const info = /^(?:\/[a-z0-9]+)?\/pieceinfo\/([^/]+)$/.exec(url.pathname)
  if (info) {
    return pieceInfo(info[1], url.searchParams).then((i) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(i))
    }, (e) => {
      res.writeHead(400)
      res.end(String(e))
    })
  }
  const carPath = /^\/car\/([^/]+)$/.exec(url.pathname)
  if (carPath) {
    return carOf(CID.parse(carPath[1])).then((car) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1', 'content-length': car.length })
      res.end(car)
    }, (e) => {
      res.writeHead(400)
      res.end(String(e))
    })
  }
  const piece = /^(?:\/([a-z0-9]+))?\/piece\/([^/]+)$/.exec(url.pathname)
  if (piece && req.method === 'GET') {
    return servePiece(piece[1] ?? 'honest', piece[2], res).catch((e) => {
      if (!res.headersSent) res.writeHead(500)
      res.end(String(e))
    })
  }
  // No mode prefix is the honest gateway (clients such as verified-fetch take no path).
  const m = /^(?:\/([a-z0-9]+))?\/ipfs\/([^/]+)$/.exec(url.pathname)
  if (!m || req.method !== 'GET') {
    res.writeHead(404)
    return res.end()
  }
  const accept = req.headers.accept ?? ''
  const wantsCar = url.searchParams.get('format') === 'car' || accept.includes('application/vnd.ipld.car')
  serve(m[1] ?? 'honest', m[2], wantsCar, res).catch((e) => {
    if (!res.headersSent) res.writeHead(500)
    res.end(String(e))
  })
})
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}`, roots }))
})
process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
