//! Which node should poll a model: rendezvous (highest random weight)
//! hashing over the live nodes (docs/spec.md §11.8). Every node that sees
//! the same live set names the same owner without asking anyone, the
//! models spread evenly, and a node that leaves or joins moves only the
//! models it owned or comes to own.

use muster::names::{MachineTag, ModelUuid};

/// The node among `nodes` that should poll `model`; none without nodes.
/// Ties (which a 64-bit weight makes all but impossible) go to the
/// smallest tag, so the answer never depends on the order given.
pub fn owner<'a>(
    model: &ModelUuid,
    nodes: impl IntoIterator<Item = &'a MachineTag>,
) -> Option<&'a MachineTag> {
    nodes
        .into_iter()
        .map(|node| (weight(node, model), node))
        .max_by(|(a, x), (b, y)| a.cmp(b).then_with(|| y.cmp(x)))
        .map(|(_, node)| node)
}

/// The weight of `node` for `model`: a hash fixed here, not the standard
/// library's, whose output may change between releases and so between the
/// nodes of one cluster.
pub fn weight(node: &MachineTag, model: &ModelUuid) -> u64 {
    // FNV-1a over the node, a separator no tag holds, and the model...
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = node
        .as_str()
        .bytes()
        .chain(std::iter::once(0xff))
        .chain(model.as_uuid().as_bytes().iter().copied());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // ...then SplitMix64's finaliser, so that nodes whose names differ in
    // their last byte get unrelated weights.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn node(n: u32) -> MachineTag {
        format!("machine-{n}").parse().unwrap()
    }

    fn models(count: u128) -> Vec<ModelUuid> {
        (1..=count).map(ModelUuid::from_u128).collect()
    }

    #[test]
    fn the_weight_is_fixed_across_builds() {
        // Nodes built by different compilers must agree: FNV-1a and
        // SplitMix64 computed apart from this code give these.
        let model = ModelUuid::from_u128(1);
        assert_eq!(weight(&node(0), &model), weight(&node(0), &model));
        let pinned = [weight(&node(0), &model), weight(&node(1), &model)];
        assert_eq!(pinned, [0x11ce_2b0d_b685_69ba, 0xc6de_7cc8_ef7f_014c]);
    }

    #[test]
    fn no_nodes_is_no_owner_and_the_order_given_does_not_matter() {
        let model = ModelUuid::from_u128(7);
        assert_eq!(owner(&model, []), None);
        let nodes = [node(1), node(2), node(3)];
        let reversed: Vec<MachineTag> = nodes.iter().rev().cloned().collect();
        assert_eq!(owner(&model, &nodes), owner(&model, &reversed));
    }

    #[test]
    fn models_spread_evenly_and_a_leaving_node_moves_only_its_own() {
        let nodes: Vec<MachineTag> = (1..=3).map(node).collect();
        let all = models(3000);
        let owned: BTreeMap<ModelUuid, MachineTag> = all
            .iter()
            .map(|m| (*m, owner(m, &nodes).unwrap().clone()))
            .collect();
        for n in &nodes {
            let count = owned.values().filter(|o| *o == n).count();
            assert!((850..=1150).contains(&count), "{n} owns {count} of 3000");
        }
        let left: Vec<MachineTag> = vec![node(1), node(3)];
        for model in &all {
            let now = owner(model, &left).unwrap();
            if owned[model] != node(2) {
                assert_eq!(now, &owned[model], "{model} moved without cause");
            }
        }
        // And the node that comes back takes back exactly what it had.
        for model in &all {
            assert_eq!(owner(model, &nodes).unwrap(), &owned[model]);
        }
    }
}
