// A small Filecoin chain for the Lotus test server: deals that activate, fault, recover,
// terminate and expire as epochs advance, with post-nv22 semantics (lotus-api notes §3):
// terminated deals are deleted at once, ended deals linger until settled, faults live only
// in miner state. Every change is dated, so the read methods can answer the state at any
// past height `at` (default: the head), as Lotus does for a tipset key.
export const DEADLINES = 48
export const DEADLINE_EPOCHS = 60
export const PROVING_PERIOD = 2880
export const FAULT_MAX_AGE = 120960

export class Chain {
  constructor({ height = 3_900_000 } = {}) {
    this.height = height
    this.deals = new Map() // id -> deal
    this.sectors = new Map() // `${miner}:${sector}` -> sector
    this.scheduled = [] // { at, action, args }
    this.listeners = [] // (event) => Promise, e.g. to mirror changes on anvil
  }

  sectorKey(miner, sector) {
    return `${miner}:${sector}`
  }

  /** Publishes a deal. `sector` is where it will be sealed on `provider`. */
  addDeal({ id, provider, client = 1000, pieceCid, pieceSize, startEpoch, endEpoch, sector, label = '' }) {
    this.deals.set(id, { id, provider, client, pieceCid, pieceSize, startEpoch, endEpoch, sector,
      label, publishedAt: this.height, activatedAt: null, slashEpoch: -1, deleted: false, deletedAt: null })
    return this.emit({ type: 'published', deal: this.deals.get(id) })
  }

  /** Seals the deal's sector now: the deal becomes active. */
  activate(id) {
    const deal = this.mustDeal(id)
    deal.activatedAt = this.height
    const key = this.sectorKey(deal.provider, deal.sector)
    if (!this.sectors.has(key)) {
      this.sectors.set(key, { miner: deal.provider, number: deal.sector, activation: this.height,
        expiration: deal.endEpoch + 2880, deadline: deal.sector % DEADLINES, partition: 0,
        faultFrom: null, recoveringFrom: null, terminatedAt: null,
        faults: [] }) // [{ from, to }]: faulty from `from` until `to` (null: still faulty)
    }
    return this.emit({ type: 'activated', deal })
  }

  /** The sector holding the deal misses its proofs from now on. */
  fault(id) {
    const s = this.sectorOf(id)
    closeFault(s, this.height)
    s.faults.push({ from: this.height, to: null })
    s.faultFrom = this.height
    s.recoveringFrom = null
    return this.emit({ type: 'faulted', deal: this.mustDeal(id) })
  }

  /** The provider declares recovery; the sector is proven again at its next deadline. */
  recover(id) {
    const s = this.sectorOf(id)
    closeFault(s, this.height)
    s.faultFrom = null
    s.recoveringFrom = null
    return this.emit({ type: 'recovered', deal: this.mustDeal(id) })
  }

  /** The sector is terminated: its deals are deleted from the market (post-nv22). */
  terminate(id) {
    const deal = this.mustDeal(id)
    const s = this.sectorOf(id)
    s.terminatedAt ??= this.height
    for (const d of this.deals.values()) {
      if (d.provider === deal.provider && d.sector === deal.sector && d.activatedAt !== null && !d.deleted) {
        d.deleted = true
        d.deletedAt = this.height
      }
    }
    return this.emit({ type: 'terminated', deal })
  }

  /** Runs `action` (a method name above) with `args` when the head reaches `at`. */
  schedule(at, action, ...args) {
    this.scheduled.push({ at, action, args })
    this.scheduled.sort((a, b) => a.at - b.at)
  }

  /** Moves the head forward, applying scheduled events at their epochs. */
  async advance(epochs) {
    const target = this.height + epochs
    while (this.scheduled.length && this.scheduled[0].at <= target) {
      const ev = this.scheduled.shift()
      if (ev.at > this.height) {
        await this.emit({ type: 'advance', epochs: ev.at - this.height })
        this.height = ev.at
      }
      await this[ev.action](...ev.args)
    }
    if (target > this.height) {
      await this.emit({ type: 'advance', epochs: target - this.height })
      this.height = target
    }
  }

  /** Follows a head that moved on its own (anvil mines a block per transaction). */
  async syncTo(height) {
    while (this.scheduled.length && this.scheduled[0].at <= height) {
      const ev = this.scheduled.shift()
      this.height = Math.max(this.height, ev.at)
      await this[ev.action](...ev.args)
    }
    this.height = Math.max(this.height, height)
  }

  async emit(event) {
    for (const l of this.listeners) await l(event, this)
  }

  mustDeal(id) {
    const deal = this.deals.get(id)
    if (!deal) throw new Error(`no deal ${id}`)
    return deal
  }

  sectorOf(id) {
    const deal = this.mustDeal(id)
    const s = this.sectors.get(this.sectorKey(deal.provider, deal.sector))
    if (!s) throw new Error(`deal ${id} is not sealed yet`)
    return s
  }

  /** The deal as StateMarketStorageDeal returns it at height `at`, or null when not found. */
  marketDeal(id, at = this.height) {
    const d = this.deals.get(id)
    if (!d || d.publishedAt > at || (d.deleted && d.deletedAt <= at)) return null
    const activated = d.activatedAt !== null && d.activatedAt <= at
    return {
      Proposal: {
        PieceCID: { '/': d.pieceCid }, PieceSize: d.pieceSize, VerifiedDeal: false,
        Client: `f0${d.client}`, Provider: `f0${d.provider}`, Label: d.label,
        StartEpoch: d.startEpoch, EndEpoch: d.endEpoch, StoragePricePerEpoch: '0',
        ProviderCollateral: '0', ClientCollateral: '0',
      },
      State: {
        SectorNumber: activated ? d.sector : 0,
        SectorStartEpoch: activated ? d.activatedAt : -1,
        LastUpdatedEpoch: -1,
        SlashEpoch: d.slashEpoch,
      },
    }
  }

  /** The sector as it was at height `at` (null before it was sealed). */
  sector(miner, number, at = this.height) {
    const s = this.sectors.get(this.sectorKey(miner, number))
    return s && s.activation <= at ? s : null
  }

  isLive(s, at = this.height) {
    return s.activation <= at && (s.terminatedAt === null || s.terminatedAt > at)
  }

  /** Epoch the fault that covers `at` began, or null when the sector was not faulty then. */
  faultStart(s, at = this.height) {
    const f = s.faults.find((f) => f.from <= at && (f.to === null || f.to > at))
    return f ? f.from : null
  }

  isFaulty(s, at = this.height) {
    return this.isLive(s, at) && this.faultStart(s, at) !== null
  }

  /** Proven at least once by WindowPoSt: one deadline after activation. */
  isActive(s, at = this.height) {
    return this.isLive(s, at) && !this.isFaulty(s, at) && at >= s.activation + DEADLINE_EPOCHS
  }

  /** The miner's sectors sealed by height `at`. */
  minerSectors(miner, at = this.height) {
    return [...this.sectors.values()].filter((s) => s.miner === miner && s.activation <= at)
  }

  hasMiner(miner) {
    return [...this.deals.values()].some((d) => d.provider === miner)
  }

  provingDeadline(miner, at = this.height) {
    const offset = (miner * 97) % PROVING_PERIOD // each miner has its own period start
    const periodStart = at - ((at - offset) % PROVING_PERIOD + PROVING_PERIOD) % PROVING_PERIOD
    const index = Math.floor((at - periodStart) / DEADLINE_EPOCHS)
    const open = periodStart + index * DEADLINE_EPOCHS
    return { CurrentEpoch: at, PeriodStart: periodStart, Index: index, Open: open,
      Close: open + DEADLINE_EPOCHS, Challenge: open - 20, FaultCutoff: open - 70,
      WPoStPeriodDeadlines: DEADLINES, WPoStProvingPeriod: PROVING_PERIOD,
      WPoStChallengeWindow: DEADLINE_EPOCHS, WPoStChallengeLookback: 20, FaultDeclarationCutoff: 70 }
  }
}

/** Ends the sector's open fault (if any) at `height`. */
function closeFault(s, height) {
  const open = s.faults.find((f) => f.to === null)
  if (open) open.to = height
}

/** Lotus's run-length bitfield JSON: alternating runs, zeros first; `[0]` when empty. */
export function rle(numbers) {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b)
  if (!sorted.length) return [0]
  const runs = []
  let pos = 0
  let i = 0
  while (i < sorted.length) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++
    runs.push(sorted[i] - pos, j - i + 1)
    pos = sorted[j] + 1
    i = j + 1
  }
  return runs
}
