// The aggregator's client page: a file's CIDs computed in the browser (wasm, in a worker),
// uploaded to the aggregator's RaaS node, a job registered on it, its deals watched live
// (the node's Server-Sent Events, the deals read straight from the DealStatus contract and
// their health from Lotus, both through raas-web), and the file downloaded verified.
import init, { DealStatusClient, LotusClient, retrieve } from '/bindings-wasm/pkg/web/raas_wasm.js'

const $ = (id) => document.getElementById(id)
const config = await (await fetch('/aggregator/config')).json()
await init()
const contract = new DealStatusClient({ rpcUrl: config.evmRpc, address: config.dealStatus })
const lotus = new LotusClient({ url: config.lotusRpc })

let file, cids, job, generation = 0, watching = false, downloadUrl
const state = (id, text, kind = text) => { const el = $(id); el.textContent = text; el.className = `state ${kind}` }
const showError = (id, e) => { $(id).textContent = e ? `[${e.code ?? 'ERROR'}] ${e.message}` : '' }

/** Answers of our API are `{ error: { code, message, field } }` when they fail. */
async function api(path, init) {
  const r = await fetch(`/raas${path}`, init)
  const body = await r.json().catch(() => ({}))
  if (!r.ok) throw Object.assign(new Error(body.error?.message ?? `HTTP ${r.status}`), { code: body.error?.code ?? `HTTP_${r.status}` })
  return body
}

// 1 · hashing in a worker
const worker = new Worker('./client-worker.js', { type: 'module' })
worker.onmessage = ({ data }) => {
  // Only the answer for the file picked last counts.
  if (data.generation !== generation) return
  if (data.progress !== undefined) { $('progress').value = data.progress; return }
  if (data.error) { state('file-state', 'error'); showError('file-error', data.error); return }
  cids = data.cids
  $('cid').textContent = cids.cid
  $('piece').textContent = cids.pieceCid
  $('size').textContent = `${cids.size.toLocaleString('en')} bytes (piece of ${cids.pieceSize.toLocaleString('en')})`
  state('file-state', 'hashed', 'done')
  $('go').disabled = false
}
$('file').addEventListener('change', (e) => {
  file = e.target.files[0]
  if (!file) return
  cids = undefined
  $('go').disabled = true
  showError('file-error')
  $('progress').value = 0
  state('file-state', 'hashing…', 'working')
  worker.postMessage({ file, generation: ++generation })
})

// 2 · upload, then register the job
$('go').addEventListener('click', async () => {
  $('go').disabled = true
  showError('upload-error')
  try {
    state('upload-state', 'uploading…', 'working')
    const up = await api('/upload', { method: 'POST', body: file, headers: { 'content-type': 'application/octet-stream' } })
    if (up.cid !== cids.cid) throw Object.assign(new Error(`the node computed ${up.cid}, this page ${cids.cid}`), { code: 'CID_MISMATCH' })
    $('uploaded').textContent = `${up.cid} (the same CID as computed here)`
    state('upload-state', 'registering…', 'working')
    // Listen before registering: the stream starts with the next event, and the node may
    // check the new job at once.
    await listen()
    const spec = { cid: up.cid, replicationTarget: Number($('copies').value), repairThresholdEpochs: Number($('repair').value) }
    const reg = await api('/register_jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) })
    job = reg.registrations[0].job
    $('job').textContent = `${job.jobId}: ${spec.replicationTarget} copies, repair after ${spec.repairThresholdEpochs} epochs`
    state('upload-state', 'registered', 'done')
    state('job-state', 'checking…', 'working')
    watch()
  } catch (e) {
    state('upload-state', 'error')
    showError('upload-error', e)
    $('go').disabled = false
  }
})

// 3 · live: the node's events, and the chain read from here
function log(line) {
  const el = $('log')
  el.textContent += `${new Date().toLocaleTimeString('en-GB')}  ${line}\n`
  el.scrollTop = el.scrollHeight
}
let events
function listen() {
  if (events) return Promise.resolve()
  events = new EventSource('/raas/events')
  return new Promise((resolve) => { events.onopen = resolve; events.onerror = resolve })
}
function watch() {
  // One set of listeners and one timer for the page, whichever job is shown.
  if (watching) return refresh()
  watching = true
  // Each event is a stored record `{ seq, jobId, kind, data, createdMs }`.
  events.addEventListener('verdict', (m) => {
    const rec = JSON.parse(m.data)
    if (rec.jobId !== job.jobId) return
    const ev = rec.data
    const short = ev.shortfall ? ` (${ev.shortfall.reason}: ${ev.shortfall.copiesNeeded} needed)` : ''
    log(`verdict ${ev.previous ?? 'new'} → ${ev.status}${short}`)
    state('job-state', ev.status)
    refresh()
  })
  events.addEventListener('request', (m) => {
    const rec = JSON.parse(m.data)
    const ev = rec.data
    if (rec.jobId === job.jobId) log(`deal request ${ev.seq ?? ''} ${ev.reason ?? ''}: ${ev.state ?? ''}`.replace(/ +/g, ' '))
  })
  setInterval(refresh, 2000)
  refresh()
}
let refreshing = false
async function refresh() {
  if (refreshing || !job) return
  refreshing = true
  try {
    // The job's status from the node too, in case an event was missed while reconnecting.
    const j = await api(`/jobs/${job.jobId}`)
    if (j.status) state('job-state', j.status)
    const deals = await contract.activeDeals(job.spec.cid)
    const health = deals.length ? await lotus.dealHealthMany(deals.map((d) => d.dealId)) : []
    // Built as text nodes: nothing read from the chain is parsed as HTML.
    const cell = (text, badge) => {
      const td = document.createElement('td')
      if (badge) td.append(Object.assign(document.createElement('span'), { className: `state ${badge}`, textContent: text }))
      else td.textContent = text
      return td
    }
    const rows = deals.map((d, i) => {
      const r = health[i]?.report
      const status = String(r?.health.status ?? (health[i]?.error ? 'error' : 'unknown'))
      const tr = document.createElement('tr')
      tr.append(cell(String(d.dealId)), cell(`f0${d.minerId}`), cell(status, status),
        cell(String(r?.epochsSinceProven ?? '—')), cell(String(r?.endEpoch ?? '—')))
      return tr
    })
    if (rows.length) $('deals').replaceChildren(...rows)
    else {
      const empty = Object.assign(cell('no deals yet'), { colSpan: 5, className: 'empty' })
      $('deals').replaceChildren(Object.assign(document.createElement('tr'), {}))
      $('deals').firstChild.append(empty)
    }
    $('download').disabled = deals.length === 0
    showError('deals-error')
  } catch (e) {
    showError('deals-error', e)
  } finally {
    refreshing = false
  }
}

// 4 · the file back, verified block by block against its CID in this page
$('download').addEventListener('click', async () => {
  showError('download-error')
  state('download-state', 'downloading…', 'working')
  try {
    const stream = await retrieve(job.spec.cid, { gateways: [`${location.origin}/raas`] })
    const blob = await new Response(stream).blob()
    if (downloadUrl) URL.revokeObjectURL(downloadUrl)
    downloadUrl = URL.createObjectURL(blob)
    const a = Object.assign(document.createElement('a'), { href: downloadUrl, download: file.name, textContent: file.name })
    $('downloaded').replaceChildren(`${blob.size.toLocaleString('en')} bytes verified against ${job.spec.cid.slice(0, 16)}… `, a)
    state('download-state', 'verified', 'done')
    window.downloaded = blob
  } catch (e) {
    state('download-state', 'error')
    showError('download-error', e)
  }
})
