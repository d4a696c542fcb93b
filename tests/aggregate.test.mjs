// Aggregation and inclusion proofs through both JS packages, against an implementation
// nobody here wrote: @web3-storage/data-segment (the w3up aggregator's) must build the same
// aggregate piece CID and the same proofs from the same pieces, on seeded random piece sets
// of many sizes. A failing seed is printed; rerun one with AGG_SEED=n.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { Aggregate, Piece } from '@web3-storage/data-segment'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const require = createRequire(import.meta.url)
const { backend, raas } = require('./helpers/backend.cjs')

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const v1 = (root) => CID.create(1, 0xf101, Digest.create(0x1012, root)).toString()

/** xorshift64: the same seed, the same history. */
function rng(seed) {
  let s = BigInt(seed) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn || 1n
  const next = () => {
    s ^= (s << 13n) & 0xffffffffffffffffn
    s ^= s >> 7n
    s ^= (s << 17n) & 0xffffffffffffffffn
    return Number(s & 0xffffffffn)
  }
  return { int: (n) => next() % n, bytes: (n) => Uint8Array.from({ length: n }, () => next() & 0xff) }
}

/** A random piece of height h (leaves of 32 bytes), padding 0, and how we pass it. */
function randomPiece(r, height) {
  const root = r.bytes(32)
  root[31] &= 0x3f
  const piece = Piece.fromLink(Piece.toLink({ root, height, padding: 0n }))
  // Half as v1 with its size, half as v2 alone: both forms hosts hold.
  const input = r.int(2) === 0
    ? { pieceCid: v1(root), pieceSize: 32 * 2 ** height }
    : { pieceCid: piece.link.toString() }
  return { piece, input }
}

function theirs(pieces, size) {
  try {
    return { ok: Aggregate.build({ pieces, size: Aggregate.Size.from(BigInt(size)) }) }
  } catch (error) {
    return { error }
  }
}

function compare(seed, pieces, inputs, size) {
  const t = theirs(pieces, size)
  let ours
  try {
    ours = raas.aggregate(inputs, { size })
  } catch (e) {
    assert.ok(t.error, `seed ${seed}: we refused (${e.code} ${e.message}), data-segment did not`)
    assert.equal(e.code, 'AGGREGATE_FULL', `seed ${seed}: ${e.message}`)
    return 'full'
  }
  assert.ok(!t.error, `seed ${seed}: data-segment refused (${t.error?.message}), we did not`)
  const agg = t.ok
  assert.equal(ours.pieceCid, agg.link.toString(), `seed ${seed}: piece CID v2`)
  assert.equal(ours.commP, v1(agg.root), `seed ${seed}: piece CID v1`)
  assert.equal(ours.pieceSize, size)
  assert.equal(ours.proofs.length, pieces.length)
  for (const [i, p] of pieces.entries()) {
    const { ok: [tree, index] } = agg.resolveProof(p.link)
    const proof = ours.proofs[i]
    assert.equal(proof.verifierData.commPc, '0181e203922020' + hex(p.root), `seed ${seed} piece ${i}`)
    assert.equal(BigInt('0x' + proof.verifierData.sizePc), 32n << BigInt(p.height))
    assert.equal(BigInt('0x' + proof.inclusionProof.proofSubtree.index), tree[0], `seed ${seed} piece ${i}: subtree index`)
    assert.deepEqual(proof.inclusionProof.proofSubtree.path, tree[1].map(hex), `seed ${seed} piece ${i}: subtree path`)
    assert.equal(BigInt('0x' + proof.inclusionProof.proofIndex.index), index[0], `seed ${seed} piece ${i}: index index`)
    assert.deepEqual(proof.inclusionProof.proofIndex.path, index[1].map(hex), `seed ${seed} piece ${i}: index path`)
    assert.equal(ours.segments[i].size, 32 * 2 ** p.height)
    const included = raas.verifyInclusion(proof, { commP: ours.commP, pieceSize: size })
    assert.deepEqual(included, { pieceCid: v1(p.root), pieceSize: 32 * 2 ** p.height })
  }
  return 'same'
}

test(`[${backend}] aggregate equals @web3-storage/data-segment on random piece sets`, () => {
  const seeds = process.env.AGG_SEED ? [Number(process.env.AGG_SEED)] : Array.from({ length: 60 }, (_, i) => i + 1)
  const outcomes = { same: 0, full: 0 }
  for (const seed of seeds) {
    const r = rng(seed)
    const dealHeight = 5 + r.int(26) // 1 KiB … 32 GiB padded
    const size = 32 * 2 ** dealHeight
    const count = 1 + r.int(seed % 5 === 0 ? 40 : 8)
    const made = Array.from({ length: count }, () => randomPiece(r, 2 + r.int(Math.max(1, dealHeight - 3))))
    outcomes[compare(seed, made.map((m) => m.piece), made.map((m) => m.input), size)]++
  }
  // Both sides of the property were exercised, unless one seed was asked for.
  if (!process.env.AGG_SEED) assert.ok(outcomes.same > 20 && outcomes.full > 3, JSON.stringify(outcomes))
})

test(`[${backend}] pieces of real payloads: our CommP, their aggregate, the same proofs`, () => {
  const r = rng(7)
  const payloads = [100, 3000, 127, 20000, 65, 9000].map((n) => r.bytes(n))
  const pieces = payloads.map((p) => Piece.fromPayload(p))
  const inputs = payloads.map((p) => ({ pieceCid: raas.computePieceCid(p).pieceCid }))
  assert.deepEqual(inputs.map((i) => i.pieceCid), pieces.map((p) => p.link.toString()))
  assert.equal(compare('payloads', pieces, inputs, 2 ** 20), 'same')
})

test(`[${backend}] tampered proofs and bad inputs are refused with codes`, () => {
  const r = rng(11)
  const made = [randomPiece(r, 4), randomPiece(r, 7), randomPiece(r, 2)]
  const a = raas.aggregate(made.map((m) => m.input), { size: 2 ** 16 })
  const ref = { commP: a.commP, pieceSize: 2 ** 16 }
  for (const [i, proof] of a.proofs.entries()) {
    for (const which of ['proofSubtree', 'proofIndex']) {
      const bad = structuredClone(proof)
      const path = bad.inclusionProof[which].path
      const at = r.int(path.length)
      path[at] = (path[at][0] === '0' ? '1' : '0') + path[at].slice(1)
      assert.throws(() => raas.verifyInclusion(bad, ref), (e) => e.code === 'INVALID_PROOF', `${i} ${which}`)
    }
    const moved = structuredClone(proof)
    moved.inclusionProof.proofSubtree.index = (BigInt('0x' + moved.inclusionProof.proofSubtree.index) ^ 1n).toString(16)
    assert.throws(() => raas.verifyInclusion(moved, ref), (e) => e.code === 'INVALID_PROOF')
  }
  // A proof of another aggregate, or of another size, does not verify for this one.
  const other = raas.aggregate(made.slice(0, 2).map((m) => m.input), { size: 2 ** 16 })
  assert.throws(() => raas.verifyInclusion(a.proofs[0], { commP: other.commP, pieceSize: 2 ** 16 }),
    (e) => e.code === 'INVALID_PROOF' && /another aggregate/.test(e.message))
  assert.deepEqual(raas.verifyInclusion(a.proofs[2], { commP: a.pieceCid }).pieceSize, 128)
  assert.throws(() => raas.verifyInclusion(a.proofs[0], { commP: 'bafy-nope' }), (e) => e.code === 'INVALID_PIECE')
  assert.throws(() => raas.verifyInclusion(a.proofs[0], { commP: a.commP }),
    (e) => e.code === 'INVALID_PIECE' && /padded size/.test(e.message))

  assert.throws(() => raas.aggregate([made[0].input, { pieceCid: v1(made[1].piece.root) }], { size: 2 ** 16 }),
    (e) => e.code === 'INVALID_PIECE' && /pieces\[1\]/.test(e.message))
  assert.throws(() => raas.aggregate([{ pieceCid: made[0].piece.link.toString(), pieceSize: 4096 }], { size: 2 ** 16 }),
    (e) => e.code === 'INVALID_PIECE' && /pieces\[0\]/.test(e.message))
  assert.throws(() => raas.aggregate([{ pieceCid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' }], { size: 2 ** 16 }),
    (e) => e.code === 'INVALID_PIECE' && /not a piece CID/.test(e.message))
  for (const size of [1000, 256, 2 ** 40, -1]) {
    assert.throws(() => raas.aggregate([made[0].input], { size }), (e) => ['INVALID_ARGUMENT'].includes(e.code), String(size))
  }
  assert.throws(() => raas.aggregate('nope', { size: 2 ** 16 }), (e) => e.code === 'INVALID_ARGUMENT')
  assert.throws(() => raas.aggregate([made[1].input, made[1].input, made[1].input], { size: 2 ** 13 }),
    (e) => e.code === 'AGGREGATE_FULL' && /pieces\[1\]/.test(e.message))
})

test(`[${backend}] aggregate and verifyInclusion read their arguments alike, naming the bad field`, () => {
  const r = rng(77)
  const root = () => { const b = r.bytes(32); b[31] &= 0x3f; return b }
  const v1Piece = { pieceCid: v1(root()), pieceSize: 1024 }
  const v2Piece = { pieceCid: Piece.fromLink(Piece.toLink({ root: root(), height: 6, padding: 0n })).link.toString() }
  const size = 2 ** 16
  const a = raas.aggregate([v1Piece, v2Piece], { size })
  // Sizes as BigInt, and `null` for an absent size, are read as the numbers they are.
  assert.deepEqual(raas.aggregate([{ ...v1Piece, pieceSize: 1024n }, { ...v2Piece, pieceSize: null }], { size: BigInt(size) }), a)
  const proof = a.proofs[0]
  assert.equal(raas.verifyInclusion(proof, { commP: a.commP, pieceSize: BigInt(size) }).pieceSize, 1024)

  const refused = [
    ['pieces not an array', () => raas.aggregate({}, { size }), /pieces/],
    ['pieceCid not a string', () => raas.aggregate([{ ...v1Piece, pieceCid: 5 }], { size }), /pieceCid/],
    ['pieceCid missing', () => raas.aggregate([{ pieceSize: 1024 }], { size }), /pieceCid/],
    ['unknown piece field', () => raas.aggregate([{ ...v1Piece, extra: 1 }], { size }), /extra/],
    ['pieceSize a string', () => raas.aggregate([{ ...v1Piece, pieceSize: '1024' }], { size }), /pieceSize|integer/],
    ['pieceSize a fraction', () => raas.aggregate([{ ...v1Piece, pieceSize: 1024.5 }], { size }), /integer/],
    ['pieceSize negative', () => raas.aggregate([{ ...v1Piece, pieceSize: -1024 }], { size }), /integer/],
    ['pieceSize past 2^53', () => raas.aggregate([{ ...v1Piece, pieceSize: 2 ** 60 }], { size }), /integer/],
    ['the second piece is named', () => raas.aggregate([v1Piece, { pieceCid: [] }], { size }), /\[1\]/],
    ['size missing', () => raas.aggregate([v1Piece], {}), /size/],
    ['unknown option', () => raas.aggregate([v1Piece], { size, out: 'x' }), /out/],
    ['options not an object', () => raas.aggregate([v1Piece], 65536), /options/],
    ['proof not an object', () => raas.verifyInclusion('proof', { commP: a.commP }), /proof/],
    ['verifierData missing', () => raas.verifyInclusion({ inclusionProof: proof.inclusionProof }, { commP: a.commP }), /verifierData/],
    ['a path node not a string', () => raas.verifyInclusion({ ...proof, inclusionProof: { ...proof.inclusionProof, proofIndex: { index: '0', path: [1] } } }, { commP: a.commP }), /path|string/],
    ['commP not a string', () => raas.verifyInclusion(proof, { commP: 5 }), /commP/],
    ['unknown aggregate field', () => raas.verifyInclusion(proof, { commP: a.commP, pieceSize: size, deal: 1 }), /deal/],
  ]
  for (const [what, call, names] of refused) {
    assert.throws(call, (e) => e.code === 'INVALID_ARGUMENT' && names.test(e.message), `${what}`)
  }
})

if (backend === 'node') {
  test('[node] writeAggregate writes a deal whose CommP is the aggregate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raas-agg-'))
    try {
      const r = rng(3)
      const files = []
      for (const [i, n] of [5000, 70000, 300, 1].entries()) {
        const path = join(dir, `p${i}`)
        const bytes = r.bytes(n)
        await writeFile(path, bytes)
        files.push({ pieceCid: raas.computePieceCid(bytes).pieceCid, path })
      }
      const out = join(dir, 'deal')
      const a = await raas.writeAggregate(files, { size: 2 ** 20, out })
      const deal = await raas.computeCidsFromFile(out)
      assert.equal(deal.commP, a.commP)
      assert.equal(deal.pieceSize, 2 ** 20)
      assert.equal(deal.size, 2 ** 20 / 128 * 127)
      const expected = theirs(files.map((f) => Piece.fromString(f.pieceCid)), 2 ** 20).ok
      assert.equal(a.pieceCid, expected.link.toString())

      await writeFile(files[1].path, r.bytes(70000))
      await assert.rejects(raas.writeAggregate(files, { size: 2 ** 20, out }),
        (e) => e.code === 'INTEGRITY' && /pieces\[1\]/.test(e.message))
      // A failed write leaves the earlier deal file as it was, and no partial file beside it.
      assert.equal((await raas.computeCidsFromFile(out)).commP, a.commP)
      await assert.rejects(raas.writeAggregate([{ ...files[0], path: join(dir, 'missing') }], { size: 2 ** 20, out }),
        (e) => e.code === 'IO')
      assert.deepEqual((await readdir(dir)).filter((n) => n.includes('partial')), [])
      // `out` naming one of the pieces is refused before anything is written.
      await assert.rejects(raas.writeAggregate([files[0]], { size: 2 ** 20, out: files[0].path }),
        (e) => e.code === 'INVALID_ARGUMENT' && /options\.out/.test(e.message))
      assert.equal(raas.computePieceCid(await readFile(files[0].path)).pieceCid, files[0].pieceCid)
      await assert.rejects(raas.writeAggregate(files, { size: 2 ** 20 }), (e) => e.code === 'INVALID_ARGUMENT')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
}
