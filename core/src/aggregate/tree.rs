//! A sparse binary Merkle tree of piece-tree nodes: only the nodes an aggregate sets (its
//! pieces' roots and its index entries) and their ancestors are stored; every other node
//! is the root of an all-zero subtree, which depends only on its level.

use std::collections::HashMap;

use crate::cid::piece::hash_pair;
use crate::podsi::ProofData;

/// A tree of `2^height` 32-byte leaves.
pub(crate) struct SparseTree {
    height: u32,
    /// `levels[l]` maps an index at level `l` (leaves are level 0) to its node.
    levels: Vec<HashMap<u64, [u8; 32]>>,
    /// `zeros[l]` is the root of an all-zero subtree of level `l`.
    zeros: Vec<[u8; 32]>,
}

impl SparseTree {
    /// An empty tree; `height` is at most 63 (callers bound it far lower).
    pub(crate) fn new(height: u32) -> Self {
        let mut zeros = Vec::with_capacity(height as usize + 1);
        let mut z = [0u8; 32];
        for _ in 0..=height {
            zeros.push(z);
            z = hash_pair(&z, &z);
        }
        SparseTree {
            height,
            levels: (0..=height).map(|_| HashMap::new()).collect(),
            zeros,
        }
    }

    /// Sets the node at `(level, index)`. Callers set disjoint subtrees only.
    pub(crate) fn set(&mut self, level: u32, index: u64, node: [u8; 32]) {
        if let Some(l) = self.levels.get_mut(level as usize) {
            l.insert(index, node);
        }
    }

    fn node(&self, level: u32, index: u64) -> [u8; 32] {
        let l = level as usize;
        self.levels
            .get(l)
            .and_then(|m| m.get(&index))
            .or_else(|| self.zeros.get(l))
            .copied()
            .unwrap_or_default()
    }

    /// Computes every ancestor of the nodes set, level by level.
    pub(crate) fn build(&mut self) {
        for level in 0..self.height {
            let mut parents: Vec<u64> =
                self.levels[level as usize].keys().map(|i| i >> 1).collect();
            parents.sort_unstable();
            parents.dedup();
            for p in parents {
                if self.levels[level as usize + 1].contains_key(&p) {
                    continue;
                }
                let node = hash_pair(&self.node(level, p << 1), &self.node(level, (p << 1) | 1));
                self.levels[level as usize + 1].insert(p, node);
            }
        }
    }

    /// The root (after [`SparseTree::build`]).
    pub(crate) fn root(&self) -> [u8; 32] {
        self.node(self.height, 0)
    }

    /// The path from `(level, index)` to the root: the sibling at each level upwards.
    pub(crate) fn proof(&self, level: u32, index: u64) -> ProofData {
        let mut path = Vec::with_capacity((self.height - level.min(self.height)) as usize);
        let mut i = index;
        for l in level..self.height {
            path.push(self.node(l, i ^ 1));
            i >>= 1;
        }
        ProofData { index, path }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_tree_has_the_zero_root_and_a_full_one_the_dense_root() {
        let t = SparseTree::new(3);
        let mut z = [0u8; 32];
        for _ in 0..3 {
            z = hash_pair(&z, &z);
        }
        assert_eq!(t.root(), z);

        let leaves: Vec<[u8; 32]> = (0..8u8).map(|i| [i; 32].map(|b| b & 0x3f)).collect();
        let mut t = SparseTree::new(3);
        for (i, leaf) in leaves.iter().enumerate() {
            t.set(0, i as u64, *leaf);
        }
        t.build();
        let mut level = leaves.clone();
        while level.len() > 1 {
            level = level.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
        }
        assert_eq!(t.root(), level[0]);
        let p = t.proof(0, 5);
        assert_eq!(p.path.len(), 3);
        assert_eq!(p.path[0], leaves[4]);
    }
}
