// The packages as users get them: `npm pack` tarballs of raas-node and raas-web installed
// into a new project outside the repository (offline: they need nothing else), used from
// CommonJS and ESM against the devnet; the browser package bundled by esbuild and by Vite
// with no configuration and loaded in headless Chromium; and a new Cargo project depending
// on raas-core by path building and running the Rust example. Runs once (BACKEND=node).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createRequire } from 'node:module'
import { chromium } from 'playwright-core'
import { startDevnet } from './devnet/devnet.mjs'
import { CHROMIUM_ARGS } from './helpers/browser.mjs'

const run = promisify(execFile)
const require = createRequire(import.meta.url)
const { backend } = require('./helpers/backend.cjs')
const repo = fileURLToPath(new URL('..', import.meta.url))
const bin = (name) => join(repo, 'node_modules', '.bin', name)
const skip = backend !== 'node' && 'the packages are tested once, in the node pass'

let dir, app, devnet, cid
const DATA = 'hello from a new project'

before(async () => {
  if (skip) return
  dir = await mkdtemp(join(tmpdir(), 'raas-packages-'))
  const { stdout } = await run('npm', ['pack', '-w', 'bindings-node', '-w', 'bindings-wasm',
    '--pack-destination', dir, '--json'], { cwd: repo, maxBuffer: 1 << 24 })
  const packed = Object.fromEntries(JSON.parse(stdout).map((p) => [p.name, p.filename]))
  app = join(dir, 'app')
  await mkdir(join(app, 'web'), { recursive: true })
  await writeFile(join(app, 'package.json'), JSON.stringify({
    name: 'an-aggregator', private: true, type: 'module',
    dependencies: { 'raas-node': `file:../${packed['raas-node']}`, 'raas-web': `file:../${packed['raas-web']}` },
  }))
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app })

  devnet = await startDevnet()
  const node = require('raas-node')
  cid = node.computeCids(Buffer.from(DATA)).cid
  const { info, chain } = devnet
  const w = new node.DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
    privateKey: info.accounts[0].privateKey })
  const request = (await w.submit(cid)).requestId
  const agg = node.aggregate([{ pieceCid: node.computeCids(Buffer.from(DATA)).pieceCid }], { size: 2 ** 20 })
  await chain.addDeal({ id: 7, provider: 1000, sector: 1, startEpoch: info.startEpoch, endEpoch: info.startEpoch + 600000,
    pieceCid: agg.commP, pieceSize: agg.pieceSize })
  await chain.activate(7)
  await w.complete(request, 7, 1000, agg.proofs[0])
})

after(async () => {
  await devnet?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

test('installed tarballs work from CommonJS and ESM, against the chain', { skip }, async () => {
  const { info } = devnet
  await writeFile(join(app, 'check.cjs'), `
const node = require('raas-node')
const web = require('raas-web')
const opts = { rpcUrl: process.env.RPC, address: process.env.ADDRESS }
;(async () => {
  const data = Buffer.from(process.env.DATA)
  console.log(JSON.stringify({
    where: [require.resolve('raas-node'), require.resolve('raas-web')],
    node: node.computeCids(data), web: await web.computeCids(data),
    // Code written for the browser build (initSync, init) runs unchanged.
    initSync: web.initSync({ module: new Uint8Array() }) !== undefined, init: (await web.init()) !== undefined,
    nodeDeals: await new node.DealStatusClient(opts).activeDeals(process.env.CID),
    webDeals: await new web.DealStatusClient(opts).activeDeals(process.env.CID),
  }))
})()
`)
  await writeFile(join(app, 'check.mjs'), `
import { computeCids, DealStatusClient } from 'raas-node'
import init, { initSync, computeCids as webCids, DealStatusClient as WebClient } from 'raas-web'
await init()
initSync({ module: new Uint8Array() })
const opts = { rpcUrl: process.env.RPC, address: process.env.ADDRESS }
const data = new TextEncoder().encode(process.env.DATA)
console.log(JSON.stringify({ node: computeCids(data), web: await webCids(data),
  webDeals: await new WebClient(opts).activeDeals(process.env.CID) }))
`)
  const env = { ...process.env, NODE_PATH: '', RPC: info.evmRpc, ADDRESS: info.dealStatus, CID: cid, DATA }
  const cjs = JSON.parse((await run('node', ['check.cjs'], { cwd: app, env })).stdout)
  for (const where of cjs.where) assert.ok(where.startsWith(app), `${where} is the installed copy`)
  assert.equal(cjs.node.cid, cid)
  assert.deepEqual(cjs.web, cjs.node)
  assert.ok(cjs.initSync && cjs.init, 'initSync() and init() are there in Node')
  assert.deepEqual(cjs.nodeDeals, [{ dealId: 7, minerId: 1000 }])
  assert.deepEqual(cjs.webDeals, cjs.nodeDeals)
  const esm = JSON.parse((await run('node', ['check.mjs'], { cwd: app, env })).stdout)
  assert.deepEqual(esm.node, cjs.node)
  assert.deepEqual(esm.web, cjs.node)
  assert.deepEqual(esm.webDeals, cjs.nodeDeals)
})

/** Serves `root` on loopback. */
async function serve(root) {
  const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' }
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    const file = normalize(join(root, path === '/' ? 'index.html' : path))
    try {
      if (!file.startsWith(root)) throw new Error('outside')
      const body = await readFile(file)
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { server, url: `http://127.0.0.1:${server.address().port}/` }
}

const PAGE = (entry) => `import init, { computeCids, aggregate, verifyInclusion } from '${entry}'
await init()
const ids = await computeCids(new TextEncoder().encode(${JSON.stringify(DATA)}))
const agg = aggregate([{ pieceCid: ids.pieceCid }], { size: 1 << 20 })
window.result = { ids, included: verifyInclusion(agg.proofs[0], { commP: agg.commP, pieceSize: agg.pieceSize }) }
document.body.textContent = 'ready'
`

test('raas-web bundles with esbuild and Vite, no configuration, and runs in Chromium', { skip }, async () => {
  const html = '<!doctype html><meta charset="utf-8"><title>bundled</title><script type="module" src="./main.js"></script>'
  const builds = {}
  // esbuild emits no asset for `new URL(…, import.meta.url)`: its users take raas-web/inline.
  await mkdir(join(app, 'esbuild'), { recursive: true })
  await writeFile(join(app, 'esbuild', 'main.js'), PAGE('raas-web/inline'))
  await run(bin('esbuild'), ['esbuild/main.js', '--bundle', '--format=esm', '--outdir=dist-esbuild', '--log-level=warning'], { cwd: app })
  await writeFile(join(app, 'dist-esbuild', 'index.html'), html)
  builds.esbuild = join(app, 'dist-esbuild')
  // Vite emits the wasm beside the bundle from the default entry.
  await writeFile(join(app, 'web', 'main.js'), PAGE('raas-web'))
  await writeFile(join(app, 'web', 'index.html'), html)
  await run(bin('vite'), ['build', '--outDir', '../dist-vite', '--emptyOutDir', '--logLevel', 'warn'], { cwd: join(app, 'web') })
  builds.vite = join(app, 'dist-vite')
  // The identifiers-only entry, through Vite too.
  await mkdir(join(app, 'ids'), { recursive: true })
  await writeFile(join(app, 'ids', 'main.js'), PAGE('raas-web/ids') +
    "import * as all from 'raas-web/ids'\nwindow.result.chain = 'DealStatusClient' in all\n")
  await writeFile(join(app, 'ids', 'index.html'), html)
  await run(bin('vite'), ['build', '--outDir', '../dist-ids', '--emptyOutDir', '--logLevel', 'warn'], { cwd: join(app, 'ids') })
  builds.ids = join(app, 'dist-ids')

  const expected = require('raas-node').computeCids(Buffer.from(DATA))
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
  try {
    for (const [name, root] of Object.entries(builds)) {
      const { server, url } = await serve(root)
      const page = await browser.newPage()
      const errors = []
      page.on('pageerror', (e) => errors.push(e.message))
      try {
        await page.goto(url)
        await page.waitForFunction(() => window.result, null, { timeout: 20_000 })
        const result = await page.evaluate(() => window.result)
        assert.deepEqual(result.ids, expected, name)
        assert.deepEqual(result.included, { pieceCid: expected.commP, pieceSize: expected.pieceSize }, name)
        assert.deepEqual(errors, [], name)
        if (name === 'ids') assert.equal(result.chain, false, 'the ids entry has no chain clients')
      } finally {
        await page.close()
        server.close()
      }
    }
  } finally {
    await browser.close()
  }
})

test('a new Cargo project builds and runs the Rust example against raas-core by path', { skip }, async () => {
  const crate = join(dir, 'rust-app')
  await mkdir(join(crate, 'src'), { recursive: true })
  // The workspace's profiles and lock file, so the build reuses the repository's compiled
  // dependencies (same versions, same settings) instead of starting from nothing.
  const manifest = await readFile(join(repo, 'Cargo.toml'), 'utf8')
  const profiles = manifest.slice(manifest.indexOf('[profile.'))
  await writeFile(join(crate, 'Cargo.toml'), `[package]
name = "an-aggregator"
version = "0.1.0"
edition = "2021"

[dependencies]
raas-core = { path = ${JSON.stringify(join(repo, 'core'))} }

${profiles}`)
  await cp(join(repo, 'Cargo.lock'), join(crate, 'Cargo.lock'))
  await cp(join(repo, 'rust-toolchain.toml'), join(crate, 'rust-toolchain.toml'))
  await cp(join(repo, 'examples', 'rust', 'identify.rs'), join(crate, 'src', 'main.rs'))
  await writeFile(join(crate, 'hello.txt'), DATA)
  const { stdout } = await run('cargo', ['run', '-q', '--', 'hello.txt'], {
    cwd: crate, maxBuffer: 1 << 24,
    env: { ...process.env, CARGO_TARGET_DIR: join(repo, 'target', 'packages') },
  })
  const expected = require('raas-node').computeCids(Buffer.from(DATA))
  assert.match(stdout, new RegExp(`cid\\s+${expected.cid}`))
  assert.match(stdout, new RegExp(`commP\\s+${expected.commP}`))
})
