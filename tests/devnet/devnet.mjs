// The devnet every test, example and the demo share: anvil with DealStatus, Multicall3 (at
// its canonical address) and the market-actor double (at the FEVM precompile address), and
// the Lotus test server playing the same chain. Changes to deals are mirrored on both, so
// the contract's `getActiveDeals` and Lotus agree.
//
// CLI (`npm run devnet`): starts everything, prints the addresses as one JSON line, and runs
// until interrupted or until its standard input closes (so a parent test process that dies
// takes it down).
import { readFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { CID } from 'multiformats/cid'
import { startAnvil } from './anvil.mjs'
import { rpc, send, deploy, word, addressWord, bytesTail } from './evm.mjs'
import { Chain } from './lotus-chain.mjs'
import { createLotusServer } from './lotus-server.mjs'

export const MULTICALL3 = '0xcA11bde05977b3631167028862bE2a173976CA11'
export const CALL_ACTOR_ID = '0xfe00000000000000000000000000000000000005'
/** anvil's first two default accounts (well-known test keys, never used elsewhere). */
export const ACCOUNTS = [
  { address: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
    privateKey: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' },
  { address: '0x70997970C51812dc3A010C44dB4d7D9Fd0aD7f0a',
    privateKey: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d' },
]

const artifacts = JSON.parse(readFileSync(fileURLToPath(new URL('../../contracts/artifacts.json', import.meta.url)), 'utf8'))

function call(contract, signature, ...encodedArgs) {
  return '0x' + artifacts[contract].methods[signature] + encodedArgs.join('')
}

/** ABI-encodes MarketState.setDeal(...) */
function setDealData(d, activated) {
  const cid = CID.parse(d.pieceCid).bytes
  const hex = Buffer.from(cid).toString('hex')
  const head = [word(d.id), word(activated), word(d.startEpoch), word(d.endEpoch - d.startEpoch),
    word(d.provider), word(d.client), word(8 * 32), word(d.pieceSize)]
  return call('MarketState', 'setDeal(uint64,int64,int64,int64,uint64,uint64,bytes,uint64)', ...head, bytesTail(hex))
}

/**
 * `contract: 'DealStatusSeeder'` deploys the bench variant with a bulk loader;
 * `pruneHistory` is passed to anvil (see startAnvil).
 */
export async function startDevnet({ startEpoch = 3_900_000, lotusToken = null, contract = 'DealStatus',
  pruneHistory = null } = {}) {
  let anvil = await startAnvil({ startEpoch, pruneHistory })
  const url = anvil.url
  // The devnet's own writes come from the last dev account, so they never race the nonces
  // of the accounts handed to tests.
  const devAccounts = await rpc(url, 'eth_accounts')
  const owner = devAccounts.at(-1)
  try {
    const marketState = await deploy(url, owner, artifacts.MarketState.bytecode)
    const shim = await deploy(url, owner, artifacts.MarketActorShim.bytecode, addressWord(marketState))
    await rpc(url, 'anvil_setCode', [CALL_ACTOR_ID, await rpc(url, 'eth_getCode', [shim, 'latest'])])
    const probe = await deploy(url, owner, artifacts.PrecompileProbe.bytecode)
    const multicall = await deploy(url, owner, artifacts.Multicall3.bytecode)
    await rpc(url, 'anvil_setCode', [MULTICALL3, await rpc(url, 'eth_getCode', [multicall, 'latest'])])
    // Owned by the first account, whose key tests get.
    const dealStatus = await deploy(url, devAccounts[0], artifacts[contract].bytecode)
    if (contract === 'DealStatusSeeder') {
      // seed() is sent from the devnet's own account, so it never races the nonces of the
      // account tests sign with.
      await send(url, devAccounts[0], dealStatus,
        call(contract, 'setAggregator(address,bool)', addressWord(owner), word(1)))
    }

    const height = Number(BigInt(await rpc(url, 'eth_blockNumber')))
    const chain = new Chain({ height })
    // Mirror market changes on the anvil double; faults live only in miner state (Lotus).
    const mirroredDeleted = new Set()
    chain.listeners.push(async (ev, c) => {
      const d = ev.deal
      if (ev.type === 'published') {
        mirroredDeleted.delete(d.id)
        await send(url, owner, marketState, setDealData(d, -1))
      }
      if (ev.type === 'activated') {
        await send(url, owner, marketState, call('MarketState', 'activate(uint64,int64)', word(d.id), word(d.activatedAt)))
      }
      if (ev.type === 'terminated') {
        // Each deleted deal once: re-marking them all made every termination cost O(deals).
        for (const other of c.deals.values()) {
          if (other.deleted && !mirroredDeleted.has(other.id)) {
            mirroredDeleted.add(other.id)
            await send(url, owner, marketState, call('MarketState', 'setExitCode(uint64,int256)', word(other.id), word(32)))
          }
        }
      }
      if (ev.type === 'advance') await rpc(url, 'anvil_mine', ['0x' + ev.epochs.toString(16)])
    })
    // Lotus's head follows anvil's, which moves with every transaction; while anvil is
    // stopped Lotus keeps answering at the height it has.
    let anvilStopped = false
    const beforeRequest = async () => {
      if (anvilStopped) return
      try {
        await chain.syncTo(Number(BigInt(await rpc(url, 'eth_blockNumber'))))
      } catch {}
    }
    // anvil stopped (its state dumped) and started again on the same port with that state:
    // an FEVM endpoint down for a while, then back where it was.
    let dumped = null
    const controls = {
      'Devnet.EvmStop': { arity: 0, fn: async () => {
        if (anvilStopped) return false
        dumped = await rpc(url, 'anvil_dumpState')
        anvilStopped = true
        anvil.stop()
        await anvil.exited
        return true
      } },
      'Devnet.EvmStart': { arity: 0, fn: async () => {
        if (!anvilStopped) return false
        anvil = await startAnvil({ port: anvil.port, pruneHistory })
        await rpc(url, 'anvil_loadState', [dumped])
        anvilStopped = false
        return Number(BigInt(await rpc(url, 'eth_blockNumber')))
      } },
    }
    const lotus = createLotusServer({ chain, token: lotusToken, beforeRequest, controls })
    const lotusRpc = await lotus.listen()
    return {
      info: { evmRpc: url, lotusRpc, chainId: 31415926, startEpoch: height, dealStatus, multicall3: MULTICALL3,
        marketState, marketActor: CALL_ACTOR_ID, precompileProbe: probe, accounts: ACCOUNTS },
      chain, lotus, anvil, owner, devAccounts, artifacts, call,
      /**
       * Seeder devnets only: records deal `dealId` of `minerId` for `cid` (a new request)
       * without a proof, for deals that hold a plain piece rather than an aggregate.
       */
      async seed(cid, dealId, minerId) {
        if (contract !== 'DealStatusSeeder') throw new Error('seed() needs startDevnet({ contract: "DealStatusSeeder" })')
        const key = Buffer.from(cid).toString('hex')
        const one = word(1) + word(32) + bytesTail(key)
        await send(url, owner, dealStatus,
          call('DealStatusSeeder', 'seed(bytes[],uint64,uint64,uint64)', word(128), word(1), word(dealId), word(minerId), one))
      },
      async stop() {
        await lotus.close()
        anvil.stop()
      },
      get anvilStopped() { return anvilStopped },
    }
  } catch (e) {
    anvil.stop()
    throw e
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // `--contract=DealStatusSeeder`: the variant that records deals without proofs (tests of
  // reads and retrieval whose deals hold plain pieces, not aggregates).
  const contract = process.argv.find((a) => a.startsWith('--contract='))?.slice('--contract='.length)
  const devnet = await startDevnet(contract ? { contract } : {})
  console.log(JSON.stringify(devnet.info))
  const stop = async () => {
    await devnet.stop()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.stdin.on('end', stop)
  process.stdin.resume()
}
