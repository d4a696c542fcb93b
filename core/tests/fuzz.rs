//! Property tests over every parser of outside input: CID strings, job specs, Lotus reply
//! shapes (bitfields, deals, heads), inclusion proofs and DAG-PB blocks of the retrieval
//! walk. Inputs are arbitrary or mutated from the corpora in `tests/fuzz-corpus/`. No
//! input may panic, and what is accepted must be what was meant.
//!
//! CI runs proptest's default 256 cases per property; `npm run fuzz` runs 20 000
//! (`PROPTEST_CASES=n` for any other count). A failing case is saved under
//! `proptest-regressions/` and replayed first from then on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use proptest::prelude::*;
use proptest::sample::Index;
use raas_core::chain::lotus::types::{MarketDeal, RleBitField, TipSet};
use raas_core::cid::parse_cid;
use raas_core::jobs::{JobLimits, JobSpec};
use raas_core::podsi::{verify, PublishedProof};
use raas_core::retrieve::walk::{Offer, Walk};
use raas_core::ErrorCode;
use serde_json::Value;

fn corpus(name: &str) -> Vec<String> {
    let path = format!("{}/tests/fuzz-corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// One edit of a mutation: (where, what, how).
type Edit = (Index, char, u8);

fn apply_edits(seed: &str, edits: &[Edit]) -> String {
    let mut c: Vec<char> = seed.chars().collect();
    for (i, ch, op) in edits {
        let n = c.len();
        match op {
            0 if n > 0 => c[i.index(n)] = *ch,
            1 if n > 0 => {
                c.remove(i.index(n));
            }
            2 => c.insert(i.index(n + 1), *ch),
            _ => c.truncate(i.index(n + 1)),
        }
    }
    c.into_iter().collect()
}

/// A seed from `seeds` with up to five character edits.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<Index>(), any::<char>(), 0u8..4), 0..6),
    )
        .prop_map(|(seed, edits)| apply_edits(&seed, &edits))
}

/// `bytes` with up to eight byte edits (set, flip, insert, cut).
fn mutated_bytes(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<Index>(), any::<u8>(), 0u8..4), 1..9).prop_map(move |edits| {
        let mut b = bytes.clone();
        for (i, v, op) in edits {
            let n = b.len();
            match op {
                0 if n > 0 => b[i.index(n)] = v,
                1 if n > 0 => b[i.index(n)] ^= 1 << (v % 8),
                2 => b.insert(i.index(n + 1), v),
                _ => b.truncate(i.index(n + 1)),
            }
        }
        b
    })
}

/// Any JSON value, nested a few levels, with the job fields' names likely as keys.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        proptest::sample::select(corpus("cids.txt")).prop_map(Value::from),
    ];
    let key = prop_oneof![
        proptest::sample::select(vec![
            "cid",
            "replicationTarget",
            "renewThresholdEpochs",
            "repairThresholdEpochs",
            "endEpoch",
            "tenant",
            "jobs",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn cid_strings_parse_or_fail_typed(s in prop_oneof![any::<String>(), mutated(corpus("cids.txt"))]) {
        match parse_cid(&s) {
            Ok(info) => {
                // What is accepted reads back as itself.
                let again = parse_cid(&info.cid.to_string()).unwrap();
                prop_assert_eq!(again.cid, info.cid);
            }
            Err(e) => {
                prop_assert_eq!(e.code(), "INVALID_CID");
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn job_specs_validate_or_name_the_field(v in prop_oneof![
        json(),
        mutated(corpus("jobs.jsonl")).prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
    ]) {
        let limits = JobLimits::default();
        match JobSpec::from_json(v.clone(), &limits) {
            Ok(spec) => {
                prop_assert!(spec.replication_target.unwrap_or(1) <= limits.max_replication_target);
                prop_assert!(parse_cid(&spec.cid).is_ok(), "{}", spec.cid);
                // Validation is idempotent: the accepted spec validates to itself.
                let again = JobSpec::from_json(serde_json::to_value(&spec).unwrap(), &limits);
                prop_assert_eq!(again.map_err(|e| e.to_string()), Ok(spec));
            }
            Err(e) => {
                prop_assert!(matches!(e.code(), "INVALID_JOB" | "INVALID_CID"), "{}", e.code());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn lotus_reply_shapes_decode_or_fail(v in prop_oneof![
        json(),
        mutated(corpus("lotus-replies.jsonl")).prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::Null)),
    ]) {
        let result = v.get("result").cloned().unwrap_or(v);
        let _ = serde_json::from_value::<MarketDeal>(result.clone());
        let _ = serde_json::from_value::<TipSet>(result.clone());
        if let Ok(bits) = serde_json::from_value::<RleBitField>(result) {
            let _ = (bits.len(), bits.contains(0), bits.contains(u64::MAX));
        }
    }

    #[test]
    fn bitfield_runs_match_a_plain_model(runs in proptest::collection::vec(
        prop_oneof![0u64..20, any::<u64>()], 0..12), probes in proptest::collection::vec(0u64..400, 0..20)) {
        match RleBitField::from_runs(&runs) {
            Ok(bits) => {
                // Runs alternate, zeros first: bit n is set when it falls in an odd run.
                let mut start = 0u64;
                let mut set = Vec::new();
                for (i, r) in runs.iter().enumerate() {
                    let end = start + r; // no overflow: from_runs accepted the sums
                    if i % 2 == 1 { set.push((start, end)); }
                    start = end;
                }
                let model = |n: u64| set.iter().any(|&(s, e)| s <= n && n < e);
                for n in probes {
                    prop_assert_eq!(bits.contains(n), model(n), "bit {}", n);
                }
                prop_assert_eq!(bits.len(), set.iter().map(|(s, e)| e - s).sum::<u64>());
            }
            Err(_) => {
                let mut sum: Option<u64> = Some(0);
                for r in &runs { sum = sum.and_then(|s| s.checked_add(*r)); }
                prop_assert!(sum.is_none(), "only an overflowing sum is refused");
            }
        }
    }
}

fn published() -> PublishedProof {
    let path = format!(
        "{}/tests/fixtures/podsi-vectors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(v[0]["proof"].clone()).unwrap()
}

proptest! {
    #[test]
    fn a_changed_proof_never_verifies(node in any::<Index>(), byte in any::<Index>(), bit in 0u8..8, subtree in any::<bool>()) {
        let p = published();
        let (mut proof, verifier) = p.to_typed().unwrap();
        let good = verify(&proof, &verifier).unwrap();
        let path = if subtree { &mut proof.proof_subtree.path } else { &mut proof.proof_index.path };
        let i = node.index(path.len());
        path[i][byte.index(32)] ^= 1 << bit;
        // The same aggregate can never come out of a changed path.
        prop_assert_ne!(verify(&proof, &verifier).ok(), Some(good));
    }

    #[test]
    fn any_published_proof_verifies_or_fails_typed(text in mutated(vec![serde_json::to_string(&published()).unwrap()])) {
        let Ok(p) = serde_json::from_str::<PublishedProof>(&text) else { return Ok(()) };
        match p.to_typed() {
            Ok((proof, verifier)) => {
                if let Err(e) = verify(&proof, &verifier) {
                    prop_assert_eq!(e.code(), "INVALID_PROOF");
                }
            }
            Err(e) => prop_assert_eq!(e.code(), "INVALID_PROOF"),
        }
    }

    #[test]
    fn typed_proofs_of_any_shape_never_panic(
        i1 in any::<u64>(), i2 in any::<u64>(),
        n1 in 0usize..70, n2 in 0usize..70,
        size in prop_oneof![any::<u64>(), (0u32..64).prop_map(|s| 1u64 << s)],
        comm in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        use raas_core::podsi::{InclusionProof, ProofData, VerifierData};
        let proof = InclusionProof {
            proof_subtree: ProofData { index: i1, path: vec![[7u8; 32]; n1] },
            proof_index: ProofData { index: i2, path: vec![[9u8; 32]; n2] },
        };
        let verifier = VerifierData { comm_pc: comm, size_pc: size };
        if let Err(e) = verify(&proof, &verifier) {
            prop_assert_eq!(e.code(), "INVALID_PROOF");
        }
    }
}

/// The DAG-PB root of a three-leaf UnixFS file (chunks of 256 KiB), with its leaves.
fn dag_pb_seed() -> Vec<u8> {
    let mut h = raas_core::cid::unixfs::UnixfsHasher::with_blocks();
    h.update(&vec![0x5a; 600 << 10]);
    let (root, blocks) = h.finish_with_blocks();
    blocks
        .into_iter()
        .find(|(c, _)| *c == root)
        .map(|(_, b)| b.to_vec())
        .unwrap()
}

fn dag_pb_cid(block: &[u8]) -> cid::Cid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(block);
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
    cid::Cid::new_v1(0x70, mh)
}

proptest! {
    #[test]
    fn the_walk_takes_any_dag_pb_block_or_fails_typed(block in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        mutated_bytes(dag_pb_seed()),
    ]) {
        let cid = dag_pb_cid(&block);
        let mut walk = Walk::new(cid, 1 << 30).unwrap();
        match walk.offer(&cid, &block, "fuzz") {
            Ok(Offer::Accepted(data)) => {
                prop_assert!(data.len() <= block.len());
                // Whatever it links to next is a CID it can verify, or the walk is done.
                prop_assert!(walk.is_done() || walk.next_needed().is_some());
            }
            Ok(Offer::Dropped) => prop_assert!(false, "the needed block was dropped"),
            Err(e) => prop_assert!(
                matches!(e.code(), "INTEGRITY" | "UNSUPPORTED" | "TOO_LARGE"),
                "{}: {}", e.code(), e
            ),
        }
    }
}
