// The HTTP API under load: `wrk` (Debian) against `raas serve` (release build, SQLite
// store), 64 connections, on this machine. Prints requests/s, p50/p99 latency, and the CPU
// the server and the load generator used (they share the cores). Beside it, a reference-
// kit-style Express `deal_status` handler (one contract read per request through a proxy
// of 50 ms and 50 requests/s) and our `GET /status/{cid}` for the same CIDs.
//   npm run bench:api            (builds target/release/raas first if it is missing)
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createRequire } from 'node:module'
import { startProxy, cpuOfPid } from './bench-lib.mjs'
import { startDevnet } from '../tests/devnet/devnet.mjs'
import { word, bytesTail } from '../tests/devnet/evm.mjs'

const require = createRequire(import.meta.url)
const root = new URL('..', import.meta.url).pathname
const bin = join(root, 'target/release/raas')
const SECS = Number(process.env.BENCH_API_SECS ?? 10)
const CONNS = 64
// BENCH_API_ONLY=reads,writes,kit runs only those parts.
const ONLY = new Set((process.env.BENCH_API_ONLY ?? 'reads,writes,kit').split(','))
if (!existsSync(bin) || process.env.BENCH_API_BUILD) {
  execFileSync('cargo', ['build', '--release', '-q', '--bin', 'raas'], { cwd: root, stdio: 'inherit' })
}
const { computeUnixfsCid } = require('raas-node')
const cidOf = (s) => computeUnixfsCid(Buffer.from(s))
const dir = mkdtempSync(join(tmpdir(), 'raas-bench-api-'))

async function startServe(config) {
  const p = spawn(bin, ['serve', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, RAAS_LOG: 'error' } })
  const url = await new Promise((resolve, reject) => {
    createInterface({ input: p.stdout }).once('line', (l) => resolve(JSON.parse(l).serving))
    p.once('exit', (c) => reject(new Error(`raas serve exited ${c}`)))
  })
  return { p, url }
}

/** Runs wrk with a Lua script; returns its figures and the CPU seconds of wrk and `serverPid`.
 * Asynchronous on purpose: the kit-style handler and its proxy live in this process, and a
 * synchronous spawn would stop them from answering while wrk runs. */
async function wrk(url, lua, serverPid, secs = SECS) {
  const script = join(dir, `s${Math.random().toString(36).slice(2)}.lua`)
  writeFileSync(script, lua)
  const before = cpuOfPid(serverPid)
  const child = spawn('bash', ['-c', `/usr/bin/time -f 'WRKCPU %U %S' wrk -t2 -c${CONNS} -d${secs}s --timeout 30s --latency -s ${script} ${url}`],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  await new Promise((resolve) => child.once('close', resolve))
  const server = (cpuOfPid(serverPid) - before) / 1000
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  const lat = (q) => {
    const m = new RegExp(`${q}%\\s+([\\d.]+)(us|ms|s)`).exec(out)
    if (!m) return NaN
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]]
  }
  const cpu = /WRKCPU ([\d.]+) ([\d.]+)/.exec(out)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  const errors = /Socket errors: (.*)/.exec(out)?.[1]
  return { rps, p50: lat(50), p99: lat(99), wrkCpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN, serverCpu: server,
    non2xx, errors, secs, out }
}

const luaList = (name, items) => `${name} = {${items.map((s) => JSON.stringify(s)).join(',\n')}}\n`
const rows = []
const report = (what, w, perRequest = 1) => {
  rows.push({ what, ...w, perRequest })
  const jobs = perRequest > 1 ? `  (${Math.round(w.rps * perRequest).toLocaleString('en')} jobs/s)` : ''
  console.log(`${what.padEnd(44)} ${w.rps.toFixed(0).padStart(7)} req/s${jobs}  p50 ${w.p50.toFixed(2)} ms  p99 ${w.p99.toFixed(2)} ms  ` +
    `CPU: server ${(w.serverCpu / w.secs).toFixed(2)} cores, wrk ${(w.wrkCpu / w.secs).toFixed(2)} cores` +
    (w.non2xx ? `  non-2xx ${w.non2xx}` : '') + (w.errors ? `  socket errors ${w.errors}` : ''))
}

// 1. Reads: 10 000 jobs registered; GET /jobs/{id} and GET /status/{cid} over all of them.
const N = 10_000
const config = (name) => ({
  store: `sqlite:${join(dir, `${name}.db`)}`, nodeId: `bench-${name}`,
  dealStatus: { rpcUrl: 'http://127.0.0.1:1', address: '0x0000000000000000000000000000000000000001' },
  http: { port: 0, maxJobsPerRequest: 1000, bodyLimitBytes: 4 << 20 }, checkIntervalSecs: 86_400,
})
if (ONLY.has('reads')) {
  const { p, url } = await startServe(config('reads'))
  const cids = Array.from({ length: N }, (_, i) => cidOf(`bench api ${i}`))
  const ids = []
  for (let i = 0; i < N; i += 1000) {
    const r = await fetch(`${url}/register_jobs`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(cids.slice(i, i + 1000).map((cid) => ({ cid, replicationTarget: 2 }))) })
    ids.push(...(await r.json()).registrations.map((x) => x.job.jobId))
  }
  const pick = (list, name) => luaList(name, list) + `
local n = #${name}
request = function() return wrk.format("GET", "/" .. PREFIX .. ${name}[math.random(n)]) end
`
  report('GET /jobs/{id}', await wrk(url, `PREFIX = "jobs/"\n` + pick(ids, 'paths'), p.pid))
  report('GET /status/{cid}', await wrk(url, `PREFIX = "status/"\n` + pick(cids, 'paths'), p.pid))
  p.kill('SIGTERM')
}

// 2. Writes: one job per request, then 1 000 jobs per request (fresh CIDs each time).
if (ONLY.has('writes')) {
  const { p, url } = await startServe(config('writes'))
  const singles = Array.from({ length: 120_000 }, (_, i) => JSON.stringify({ cid: cidOf(`single ${i}`), replicationTarget: 2 }))
  const lua = (bodies) => luaList('bodies', bodies) + `
local i = 0
local n = #bodies
local t = 0
setup = function(thread) t = t + 1; thread:set("tid", t) end
init = function() i = tid - 1 end
request = function()
  i = i + 2
  if i > n then i = (i % n) + 1 end
  return wrk.format("POST", "/register_jobs", {["Content-Type"] = "application/json"}, bodies[i])
end
`
  report('POST /register_jobs (1 job per request)', await wrk(url, lua(singles), p.pid))
  const batches = []
  for (let b = 0; b < 700; b++) {
    batches.push(JSON.stringify(Array.from({ length: 1000 }, (_, j) => ({ cid: cidOf(`batch ${b} ${j}`), replicationTarget: 2 }))))
  }
  report('POST /register_jobs (1 000 jobs per request)', await wrk(url, lua(batches), p.pid), 1000)
  p.kill('SIGTERM')
}

// 3. What a polling client sees: the reference kit's deal_status (one contract read per
// request, through the 50 ms / 50 requests/s proxy) against our /status/{cid}.
if (ONLY.has('kit')) {
  const devnet = await startDevnet()
  const proxy = await startProxy(devnet.info.evmRpc, { latencyMs: 50, rps: 50 })
  const { default: express } = await import('express')
  const http = await import('node:http')
  const app = express()
  app.get('/api/deal_status', async (req, res) => {
    try {
      await kitStatus(req, res)
    } catch (e) {
      res.status(502).json({ error: String(e.message) })
    }
  })
  async function kitStatus(req, res) {
    const cid = String(req.query.cid ?? '')
    const data = devnet.call('DealStatus', 'getActiveDeals(bytes)', word(32), bytesTail(Buffer.from(cid).toString('hex')))
    const r = await fetch(proxy.url, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_call', params: [{ to: devnet.info.dealStatus, data }, 'latest'] }) })
    const { result } = await r.json()
    res.status(200).json({ dealInfos: [], jobType: 'all', replicationTarget: '2', epochs: '1000', currentActiveDeals: result })
  }
  const server = http.createServer(app)
  const kitUrl = await new Promise((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${server.address().port}`)))
  const cids = Array.from({ length: 200 }, (_, i) => cidOf(`poll ${i}`))
  const kit = await wrk(kitUrl, luaList('cids', cids) + `
request = function() return wrk.format("GET", "/api/deal_status?cid=" .. cids[math.random(#cids)]) end
`, process.pid)
  report('kit-style GET /api/deal_status (Express, proxy)', kit)
  const { p, url } = await startServe({ ...config('poll'), dealStatus: { rpcUrl: proxy.url, address: devnet.info.dealStatus } })
  await fetch(`${url}/register_jobs`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(cids.map((cid) => ({ cid, replicationTarget: 2 }))) })
  report('ours: GET /status/{cid} (same CIDs)', await wrk(url, luaList('cids', cids) + `
request = function() return wrk.format("GET", "/status/" .. cids[math.random(#cids)]) end
`, p.pid))
  p.kill('SIGTERM')
  await new Promise((r) => server.close(r))
  proxy.close()
  await devnet.stop()
}

rmSync(dir, { recursive: true, force: true })
console.log(`\n${CONNS} connections, ${SECS} s per run, wrk -t2, on ${(await import('node:os')).cpus().length} cores (server and wrk share them).`)
