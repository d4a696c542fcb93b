// Scale benchmark: N replication jobs (default 1 000 000) on PostgreSQL, three `raas run`
// processes (the release binary) sharing them, one full cycle through a proxy adding 50 ms
// per round trip and admitting 50 requests/s to each endpoint. Every job's CID has no deal,
// so every check is a shortfall and writes a deal request: the heaviest cycle for the store.
// Prints the cycle time against the time the rate limit alone forces for the requests sent,
// whether every job was checked exactly once, the memory of each node process, and where
// the time went (the proxy, the database, our CPU).
//   npm run bench:scale      (RAAS_BENCH_JOBS to change 1 000 000)
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { create as digest } from 'multiformats/hashes/digest'
import { startDevnet } from '../tests/devnet/devnet.mjs'
import { startProxy, cpuOfPid, fmt, sleep } from './bench-lib.mjs'

const N = Number(process.env.RAAS_BENCH_JOBS ?? 1_000_000)
const NODES = 3
const LATENCY_MS = 50
const RPS = 50
const repo = fileURLToPath(new URL('..', import.meta.url))

console.log(`Scale: ${N.toLocaleString('en-US')} jobs on PostgreSQL, ${NODES} node processes; proxy ${LATENCY_MS} ms, ${RPS} req/s\n`)
const build = spawnSync('cargo', ['build', '--release', '-q', '-p', 'raas-core', '--bin', 'raas'], { cwd: repo, stdio: 'inherit' })
if (build.status !== 0) process.exit(1)
const raasBin = join(repo, 'target/release/raas')

const pgPort = process.env.RAAS_BENCH_PG_PORT ?? '55434'
const pgEnv = { ...process.env, RAAS_PG_PORT: pgPort }
const admin = execFileSync('bash', [join(repo, 'scripts/postgres.sh'), 'start'], { env: pgEnv }).toString().trim()
const psqlBin = execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1']).toString().trim() + '/psql'
const psql = (url, sql) => execFileSync(psqlBin, [url, '-Atc', sql]).toString().trim()
const db = `raas_scale_${process.pid}`
psql(admin, `DROP DATABASE IF EXISTS ${db}`)
psql(admin, `CREATE DATABASE ${db}`)
const store = `${admin.slice(0, admin.lastIndexOf('/'))}/${db}`

const devnet = await startDevnet({ pruneHistory: 2 })
const { info } = devnet
const evmProxy = await startProxy(info.evmRpc, { latencyMs: LATENCY_MS, rps: RPS })
const lotusProxy = await startProxy(info.lotusRpc, { latencyMs: LATENCY_MS, rps: RPS })
const dir = mkdtempSync(join(tmpdir(), 'raas-scale-'))

const config = (nodeId) => JSON.stringify({
  store,
  nodeId,
  dealStatus: { rpcUrl: evmProxy.url, address: info.dealStatus, timeoutMs: 120000 },
  lotus: { url: lotusProxy.url, timeoutMs: 120000 },
  // One cycle: no job comes due twice during the run.
  checkIntervalSecs: 30 * 86400,
  batchSize: 500,
  concurrency: 8,
  leaseSecs: 600,
  pollIntervalMs: 200,
})

process.stdout.write('registering… ')
let t = performance.now()
const jobsFile = join(dir, 'jobs.jsonl')
const lines = []
for (let i = 0; i < N; i++) {
  const cid = CID.createV1(0x55, digest(0x12, createHash('sha256').update(`scale bench ${i}`).digest())).toString()
  lines.push(JSON.stringify({ cid, replicationTarget: 1 }))
}
writeFileSync(jobsFile, lines.join('\n'))
lines.length = 0
const reg = spawnSync(raasBin, ['register', config('registrar'), `@${jobsFile}`], { encoding: 'utf8', maxBuffer: 1 << 26 })
if (reg.status !== 0) throw new Error(`register failed: ${reg.stdout} ${reg.stderr}`)
const registerMs = performance.now() - t
console.log(`${fmt(registerMs)}`)

const pgPids = () => execFileSync('bash', ['-c', `pgrep -f "postgres.*${pgPort}" || true`]).toString().trim().split('\n').filter(Boolean).map(Number)
const pgCpu = () => pgPids().reduce((s, p) => { try { return s + cpuOfPid(p) } catch { return s } }, 0)
const hwmKiB = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)

evmProxy.stats.requests = 0
lotusProxy.stats.requests = 0
const since = Date.now()
const pg0 = pgCpu()
const anvil0 = cpuOfPid(devnet.anvil.child.pid)
t = performance.now()
const nodes = Array.from({ length: NODES }, (_, i) =>
  spawn(raasBin, ['run', config(`scale-${i + 1}`)], { stdio: ['ignore', 'ignore', 'inherit'] }))
const checked = () => Number(psql(store, `SELECT count(*) FROM raas_checks WHERE checked_ms >= ${since}`))
let peak = nodes.map(() => 0)
let n = 0
const seenMemory = []
while ((n = checked()) < N) {
  await sleep(500)
  peak = nodes.map((c, i) => Math.max(peak[i], hwmKiB(c.pid)))
  seenMemory.push(peak.slice())
  process.stdout.write(`\r${n.toLocaleString('en-US')} checked, ${fmt(performance.now() - t)}   `)
}
// The cycle ends at the last check recorded (the polling above is only for progress);
// it starts when the processes were spawned.
const cycleMs = Number(psql(store, `SELECT max(checked_ms) FROM raas_checks WHERE checked_ms >= ${since}`)) - since
const nodeCpu = nodes.map((c) => cpuOfPid(c.pid))
const pgCpuMs = pgCpu() - pg0
const anvilCpuMs = cpuOfPid(devnet.anvil.child.pid) - anvil0
peak = nodes.map((c, i) => Math.max(peak[i], hwmKiB(c.pid)))
for (const c of nodes) c.kill('SIGTERM')
await Promise.all(nodes.map((c) => new Promise((r) => c.on('exit', r))))
console.log('')

const [rows, distinct, requests, perNode] = [
  psql(store, `SELECT count(*) FROM raas_checks WHERE checked_ms >= ${since}`),
  psql(store, `SELECT count(DISTINCT job_id) FROM raas_checks WHERE checked_ms >= ${since}`),
  psql(store, 'SELECT count(*) FROM raas_outbox'),
  psql(store, `SELECT node_id || ':' || count(*) FROM raas_checks WHERE checked_ms >= ${since} GROUP BY node_id ORDER BY node_id`),
]
const sent = evmProxy.stats.requests + lotusProxy.stats.requests
// Both proxies admit RPS each: the rate limit alone needs the busier one's requests / RPS.
const floorMs = (Math.max(evmProxy.stats.requests, lotusProxy.stats.requests) / RPS) * 1000
evmProxy.close()
lotusProxy.close()
await devnet.stop()
psql(admin, `DROP DATABASE IF EXISTS ${db}`)
execFileSync('bash', [join(repo, 'scripts/postgres.sh'), 'stop'], { env: pgEnv })
rmSync(dir, { recursive: true, force: true })

const mib = (k) => `${(k / 1024).toFixed(1)} MiB`
const exactlyOnce = Number(rows) === N && Number(distinct) === N
console.log(`
| ${N.toLocaleString('en-US')} jobs, ${NODES} nodes, one cycle through the proxy | |
|---|---:|
| cycle time | ${fmt(cycleMs)} |
| requests sent (DealStatus + Lotus) | ${evmProxy.stats.requests} + ${lotusProxy.stats.requests} = ${sent} |
| time the rate limit alone forces for them | ${fmt(floorMs)} |
| every job checked exactly once | ${exactlyOnce ? 'yes' : 'NO'} (${rows} checks of ${distinct} jobs; ${perNode.split('\n').join(', ')}) |
| deal requests written | ${requests} |
| peak memory per node process | ${peak.map(mib).join(', ')} |
| CPU: nodes / PostgreSQL / anvil | ${nodeCpu.map(fmt).join(' + ')} / ${fmt(pgCpuMs)} / ${fmt(anvilCpuMs)} |
| registering the jobs (one process, 5 000 per transaction) | ${fmt(registerMs)} |

Targets:
- cycle / the rate limit's time: ${(cycleMs / floorMs).toFixed(2)} (target at most 1.2)
- memory per node: ${mib(Math.max(...peak))} at most (target under 100 MiB, flat: ${seenMemory.length > 4 ? `${mib(Math.max(...seenMemory[Math.floor(seenMemory.length / 2)]))} at half time` : 'short run'})`)
if (!exactlyOnce) process.exit(1)
