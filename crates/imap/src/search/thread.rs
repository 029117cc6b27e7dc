//! THREAD: ORDEREDSUBJECT and REFERENCES (RFC 5256 section 2.2),
//! REFS (RFC 9228).
//!
//! Containers live in one arena and point at each other by index; every
//! walk is iterative, so a long reply chain cannot exhaust the stack.

use std::collections::HashMap;

use super::sort::{base_subject_of, sent_date, subject_of};
use super::subject::extract;
use super::text::fold;
use super::{MessageView, ThreadIds};
use crate::codec::response::ThreadTree;

pub(crate) fn ordered_subject(msgs: &[MessageView], ids: ThreadIds) -> Vec<ThreadTree> {
    let subjects: Vec<String> = msgs.iter().map(|m| fold(&base_subject_of(m))).collect();
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        subjects[a]
            .cmp(&subjects[b])
            .then_with(|| date_key(&msgs[a]).cmp(&date_key(&msgs[b])))
    });
    // Each run of one base subject is a thread: the first message is the
    // parent and the others are its children, in date order.
    let mut threads: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in order {
        match threads.last_mut() {
            Some((first, rest)) if subjects[*first] == subjects[i] => rest.push(i),
            _ => threads.push((i, Vec::new())),
        }
    }
    threads.sort_by_key(|(first, _)| date_key(&msgs[*first]));
    threads
        .into_iter()
        .map(|(first, rest)| ThreadTree {
            id: Some(number(&msgs[first], ids)),
            children: rest
                .into_iter()
                .map(|i| ThreadTree {
                    id: Some(number(&msgs[i], ids)),
                    children: Vec::new(),
                })
                .collect(),
        })
        .collect()
}

/// REFERENCES (`merge_subjects`) or REFS (not; roots by latest message).
pub(crate) fn references(
    msgs: &[MessageView],
    ids: ThreadIds,
    merge_subjects: bool,
) -> Vec<ThreadTree> {
    let mut t = Arena::default();
    t.link_all(msgs);
    let roots: Vec<usize> = (0..t.nodes.len())
        .filter(|&n| t.nodes[n].parent.is_none())
        .collect();
    let mut roots = t.prune(roots);
    if merge_subjects {
        roots = t.merge_by_subject(msgs, roots);
    }
    let dates = t.sort_children(msgs, &roots);
    let key = |n: usize| -> (i64, u32) {
        if merge_subjects {
            dates[n].0
        } else {
            dates[n].1
        }
    };
    roots.sort_by_key(|&n| key(n));
    t.flatten_below(MAX_DEPTH, &roots);
    t.build(msgs, ids, &roots)
}

/// Replies nested deeper than this are listed as direct children of their
/// ancestor at this depth, so the response tree (and its encoder and its
/// drop) stays shallow whatever the reference chains look like.
pub(crate) const MAX_DEPTH: usize = 100;

fn number(m: &MessageView, ids: ThreadIds) -> u32 {
    match ids {
        ThreadIds::Seq => m.seq,
        ThreadIds::Uid => u32::try_from(m.info.uid).unwrap_or(0),
    }
}

/// Sent date (internal date when missing), then sequence number.
fn date_key(m: &MessageView) -> (i64, u32) {
    (sent_date(m), m.seq)
}

fn normalize_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

#[derive(Default)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

#[derive(Default)]
struct Arena {
    nodes: Vec<Node>,
}

impl Arena {
    fn new_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Whether `a` is `b` or one of `b`'s ancestors.
    fn is_ancestor_or_self(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(b);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            cur = self.nodes[c].parent;
            steps += 1;
            if steps > self.nodes.len() {
                return true; // cannot happen; refuse rather than spin
            }
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// Step 1: containers by Message-ID, linked along References (or the
    /// first In-Reply-To when there is no References).
    fn link_all(&mut self, msgs: &[MessageView]) {
        let mut table: HashMap<String, usize> = HashMap::new();
        for (i, m) in msgs.iter().enumerate() {
            let meta = m.meta;
            let own = meta
                .and_then(|x| x.message_id.as_deref())
                .and_then(normalize_id);
            // (A) A message without a Message-ID, or repeating one already
            // seen on a message, gets a container of its own.
            let c = match own.as_ref().and_then(|id| table.get(id).copied()) {
                Some(c) if self.nodes[c].msg.is_none() => c,
                Some(_) => self.new_node(),
                None => {
                    let c = self.new_node();
                    if let Some(id) = own {
                        table.insert(id, c);
                    }
                    c
                }
            };
            self.nodes[c].msg = Some(i);

            // (B) Chain the referenced containers, never making a loop and
            // never moving one that already has a parent.
            let refs: Vec<String> = match meta {
                Some(x) if !x.references.is_empty() => x
                    .references
                    .iter()
                    .filter_map(|r| normalize_id(r))
                    .collect(),
                Some(x) => x
                    .in_reply_to
                    .iter()
                    .filter_map(|r| normalize_id(r))
                    .take(1)
                    .collect(),
                None => Vec::new(),
            };
            let refs: Vec<usize> = refs
                .into_iter()
                .map(|id| {
                    *table.entry(id).or_insert_with(|| {
                        self.nodes.push(Node::default());
                        self.nodes.len() - 1
                    })
                })
                .collect();
            for w in refs.windows(2) {
                let (a, b) = (w[0], w[1]);
                if self.nodes[b].parent.is_none() && !self.is_ancestor_or_self(b, a) {
                    self.link(a, b);
                }
            }
            // (C) The last reference is this message's parent, replacing
            // any parent guessed from other messages' References.
            match refs.last() {
                Some(&p) if !self.is_ancestor_or_self(c, p) => self.link(p, c),
                Some(_) => {}
                None => self.unlink(c),
            }
        }
    }

    /// Nodes below `roots`, each after all of its descendants.
    fn post_order(&self, roots: &[usize]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, bool)> = roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                out.push(n);
            } else {
                stack.push((n, true));
                for &c in self.nodes[n].children.iter().rev() {
                    stack.push((c, false));
                }
            }
        }
        out
    }

    /// Step 4: drop empty dummies; replace a dummy by its children, except
    /// at the top level where only a dummy with one child is replaced.
    fn prune(&mut self, roots: Vec<usize>) -> Vec<usize> {
        for n in self.post_order(&roots) {
            let old = std::mem::take(&mut self.nodes[n].children);
            let mut new = Vec::with_capacity(old.len());
            for c in old {
                if self.nodes[c].msg.is_some() {
                    new.push(c);
                } else {
                    new.append(&mut self.nodes[c].children);
                }
            }
            for &c in &new {
                self.nodes[c].parent = Some(n);
            }
            self.nodes[n].children = new;
        }
        let mut out = Vec::with_capacity(roots.len());
        for r in roots {
            if self.nodes[r].msg.is_some() || self.nodes[r].children.len() > 1 {
                out.push(r);
            } else if let Some(&only) = self.nodes[r].children.first() {
                self.nodes[only].parent = None;
                out.push(only);
            }
        }
        out
    }

    /// The subject a root goes by: its message's, or its first child's.
    fn root_subject(&self, msgs: &[MessageView], r: usize) -> Option<(String, bool)> {
        let m = self.nodes[r]
            .msg
            .or_else(|| self.nodes[*self.nodes[r].children.first()?].msg)?;
        let (base, reply) = extract(&subject_of(&msgs[m])?);
        let base = fold(&base);
        (!base.is_empty()).then_some((base, reply))
    }

    /// Step 5: roots with the same base subject are gathered together.
    fn merge_by_subject(&mut self, msgs: &[MessageView], roots: Vec<usize>) -> Vec<usize> {
        let subjects: Vec<Option<(String, bool)>> =
            roots.iter().map(|&r| self.root_subject(msgs, r)).collect();
        let is_dummy = |a: &Arena, n: usize| a.nodes[n].msg.is_none();
        // (B) One root per subject: prefer a dummy, then a non-reply.
        let mut table: HashMap<&str, usize> = HashMap::new(); // subject -> slot
        for (slot, s) in subjects.iter().enumerate() {
            let Some((base, reply)) = s else { continue };
            match table.get(base.as_str()) {
                None => {
                    table.insert(base, slot);
                }
                Some(&other) => {
                    let other_dummy = is_dummy(self, roots[other]);
                    let other_reply = subjects[other].as_ref().is_some_and(|x| x.1);
                    let this_dummy = is_dummy(self, roots[slot]);
                    if (this_dummy && !other_dummy) || (other_reply && !reply && !other_dummy) {
                        table.insert(base, slot);
                    }
                }
            }
        }
        // (C) Merge every other root into the table's one.
        let mut slots: Vec<Option<usize>> = roots.iter().copied().map(Some).collect();
        for slot in 0..roots.len() {
            let Some((base, reply)) = &subjects[slot] else {
                continue;
            };
            let target_slot = table[base.as_str()];
            if target_slot == slot {
                continue;
            }
            let (Some(this), Some(other)) = (slots[slot], slots[target_slot]) else {
                continue;
            };
            let other_reply = subjects[target_slot].as_ref().is_some_and(|x| x.1);
            match (is_dummy(self, this), is_dummy(self, other)) {
                (true, true) => {
                    for c in std::mem::take(&mut self.nodes[this].children) {
                        self.link(other, c);
                    }
                }
                (false, true) => self.link(other, this),
                (true, false) => {
                    self.link(this, other);
                    slots[target_slot] = Some(this);
                }
                (false, false) if *reply && !other_reply => self.link(other, this),
                (false, false) => {
                    let d = self.new_node();
                    self.link(d, other);
                    self.link(d, this);
                    slots[target_slot] = Some(d);
                }
            }
            slots[slot] = None;
        }
        slots.into_iter().flatten().collect()
    }

    /// Step 6: children in date order (a dummy dated by its first child).
    /// Returns, per node, its (date, seq) key and the latest key in its
    /// subtree (for REFS).
    fn sort_children(
        &mut self,
        msgs: &[MessageView],
        roots: &[usize],
    ) -> Vec<((i64, u32), (i64, u32))> {
        let mut keys = vec![((0, 0), (0, 0)); self.nodes.len()];
        for n in self.post_order(roots) {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            children.sort_by_key(|&c| keys[c].0);
            let own = match self.nodes[n].msg {
                Some(m) => date_key(&msgs[m]),
                None => children.first().map_or((0, 0), |&c| keys[c].0),
            };
            let latest = children.iter().map(|&c| keys[c].1).fold(own, Ord::max);
            keys[n] = (own, latest);
            self.nodes[n].children = children;
        }
        keys
    }

    /// Makes every descendant of a node at depth `max` (roots are depth 1)
    /// its direct child, in pre-order, keeping the thread's order.
    fn flatten_below(&mut self, max: usize, roots: &[usize]) {
        let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 1)).collect();
        while let Some((n, depth)) = stack.pop() {
            if depth < max {
                for &c in self.nodes[n].children.iter().rev() {
                    stack.push((c, depth + 1));
                }
                continue;
            }
            let mut flat = Vec::new();
            let mut below: Vec<usize> = self.nodes[n].children.iter().rev().copied().collect();
            while let Some(c) = below.pop() {
                flat.push(c);
                let grandchildren = std::mem::take(&mut self.nodes[c].children);
                below.extend(grandchildren.into_iter().rev());
                self.nodes[c].parent = Some(n);
            }
            self.nodes[n].children = flat;
        }
    }

    /// The response trees, built bottom-up.
    fn build(&self, msgs: &[MessageView], ids: ThreadIds, roots: &[usize]) -> Vec<ThreadTree> {
        let mut built: Vec<Option<ThreadTree>> = (0..self.nodes.len()).map(|_| None).collect();
        for n in self.post_order(roots) {
            let children = self.nodes[n]
                .children
                .iter()
                .filter_map(|&c| built[c].take())
                .collect();
            built[n] = Some(ThreadTree {
                id: self.nodes[n].msg.map(|m| number(&msgs[m], ids)),
                children,
            });
        }
        roots.iter().filter_map(|&r| built[r].take()).collect()
    }
}
