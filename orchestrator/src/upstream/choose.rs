//! Which upstreams may take a generation of a model, in the order they are
//! tried. Pure: no I/O, no clock — the caller passes what it knows now.
//!
//! The order:
//! 1. only upstreams that serve the model (their list names it), then those
//!    whose list is not known yet (the name is sent as is);
//! 2. never one whose breaker is open (a half-open one may take its trial);
//! 3. primaries before fallbacks;
//! 4. reachable (last health check answered) before unreachable;
//! 5. least loaded first: in-flight generations per unit of capacity
//!    (`slots × weight`), so a 4-slot upstream takes four before a 1-slot one
//!    takes a second;
//! 6. ties rotate with `turn`, so equal upstreams share the work.
//!
//! A failure before the first byte reached the client moves the generation to
//! the next upstream in this order (see `api::open`).

use std::cmp::Ordering;

/// Whether an upstream serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Its list names it.
    Yes,
    /// Its list is not known (never read).
    Unknown,
    /// Its list does not name it.
    No,
}

/// What is known of one upstream at the moment of choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Whether it serves the model.
    pub serves: Serves,
    /// Its breaker refuses calls now; with the seconds until its trial.
    pub open: Option<u64>,
    /// Its last health check answered (or none was made yet).
    pub reachable: bool,
    /// Generations of ours in flight to it.
    pub in_flight: usize,
    /// Generations it runs at once (≥ 1).
    pub slots: u32,
    /// Capacity multiplier (≥ 1).
    pub weight: u32,
    /// Only for what no primary could take.
    pub fallback: bool,
}

/// Why no upstream can take the generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoUpstream {
    /// None serves the model.
    NotServed,
    /// Some serve it, and every one of their breakers is open; the soonest
    /// trial is in this many seconds.
    AllOpen {
        /// Seconds until the first breaker lets a trial through.
        retry_after: u64,
    },
}

/// The indices of `views` to try, in order (see the module docs).
pub fn order(views: &[View], turn: usize) -> Result<Vec<usize>, NoUpstream> {
    let serving: Vec<usize> = (0..views.len())
        .filter(|&i| views[i].serves != Serves::No)
        .collect();
    if serving.is_empty() {
        return Err(NoUpstream::NotServed);
    }
    let mut open: Vec<usize> = serving
        .iter()
        .copied()
        .filter(|&i| views[i].open.is_none())
        .collect();
    if open.is_empty() {
        let retry_after = serving
            .iter()
            .filter_map(|&i| views[i].open)
            .min()
            .unwrap_or(1);
        return Err(NoUpstream::AllOpen { retry_after });
    }
    let n = views.len();
    let rotation = |i: usize| (i + n - turn % n) % n;
    open.sort_by(|&a, &b| {
        let (va, vb) = (&views[a], &views[b]);
        va.fallback
            .cmp(&vb.fallback)
            .then((va.serves == Serves::Unknown).cmp(&(vb.serves == Serves::Unknown)))
            .then(vb.reachable.cmp(&va.reachable))
            .then(load(va, vb))
            .then(rotation(a).cmp(&rotation(b)))
    });
    Ok(open)
}

/// `a`'s load against `b`'s: in-flight / (slots × weight), compared without division.
fn load(a: &View, b: &View) -> Ordering {
    let capacity = |v: &View| u128::from(v.slots.max(1)) * u128::from(v.weight.max(1));
    (a.in_flight as u128 * capacity(b)).cmp(&(b.in_flight as u128 * capacity(a)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up() -> View {
        View {
            serves: Serves::Yes,
            open: None,
            reachable: true,
            in_flight: 0,
            slots: 1,
            weight: 1,
            fallback: false,
        }
    }

    #[test]
    fn only_upstreams_serving_the_model_and_unknown_ones_last() {
        let views = [
            View {
                serves: Serves::No,
                ..up()
            },
            View {
                serves: Serves::Unknown,
                ..up()
            },
            up(),
        ];
        assert_eq!(order(&views, 0), Ok(vec![2, 1]));
        assert_eq!(
            order(&views[..1], 0),
            Err(NoUpstream::NotServed),
            "a model served nowhere"
        );
    }

    #[test]
    fn open_breakers_are_skipped_and_all_open_says_when_to_retry() {
        let views = [
            View {
                open: Some(7),
                ..up()
            },
            up(),
            View {
                open: Some(3),
                serves: Serves::No,
                ..up()
            },
        ];
        assert_eq!(order(&views, 0), Ok(vec![1]));
        let all = [
            View {
                open: Some(7),
                ..up()
            },
            View {
                open: Some(4),
                ..up()
            },
        ];
        assert_eq!(order(&all, 0), Err(NoUpstream::AllOpen { retry_after: 4 }));
    }

    #[test]
    fn the_fallback_comes_after_every_primary_and_takes_over_when_they_are_open() {
        let fallback = View {
            fallback: true,
            ..up()
        };
        let busy = View {
            in_flight: 9,
            reachable: false,
            ..up()
        };
        assert_eq!(order(&[fallback, busy], 0), Ok(vec![1, 0]));
        let open = View {
            open: Some(5),
            ..up()
        };
        assert_eq!(order(&[open, fallback], 0), Ok(vec![1]));
    }

    #[test]
    fn least_loaded_by_capacity_then_rotating() {
        let four_slots_two_busy = View {
            in_flight: 2,
            slots: 4,
            ..up()
        };
        let one_slot_one_busy = View {
            in_flight: 1,
            ..up()
        };
        assert_eq!(
            order(&[one_slot_one_busy, four_slots_two_busy], 0),
            Ok(vec![1, 0])
        );
        let heavy = View {
            in_flight: 2,
            weight: 3,
            ..up()
        };
        let light = View {
            in_flight: 1,
            ..up()
        };
        assert_eq!(order(&[light, heavy], 0), Ok(vec![1, 0]), "2/3 < 1/1");
        let idle = [up(), up(), up()];
        assert_eq!(order(&idle, 0), Ok(vec![0, 1, 2]));
        assert_eq!(order(&idle, 1), Ok(vec![1, 2, 0]));
        assert_eq!(order(&idle, 5), Ok(vec![2, 0, 1]));
    }

    #[test]
    fn an_unreachable_upstream_is_tried_after_reachable_ones() {
        let down = View {
            reachable: false,
            ..up()
        };
        let loaded = View {
            in_flight: 3,
            ..up()
        };
        assert_eq!(order(&[down, loaded], 0), Ok(vec![1, 0]));
    }

    fn view() -> impl Strategy<Value = View> {
        (
            prop_oneof![Just(Serves::Yes), Just(Serves::Unknown), Just(Serves::No)],
            prop::option::of(1u64..30),
            any::<bool>(),
            0usize..8,
            1u32..5,
            1u32..4,
            any::<bool>(),
        )
            .prop_map(
                |(serves, open, reachable, in_flight, slots, weight, fallback)| View {
                    serves,
                    open,
                    reachable,
                    in_flight,
                    slots,
                    weight,
                    fallback,
                },
            )
    }

    proptest! {
        #[test]
        fn the_order_holds_every_rule(views in prop::collection::vec(view(), 1..8), turn in 0usize..20) {
            let eligible: Vec<usize> = (0..views.len())
                .filter(|&i| views[i].serves != Serves::No && views[i].open.is_none())
                .collect();
            match order(&views, turn) {
                Ok(picked) => {
                    // Exactly the eligible ones, each once.
                    let mut sorted = picked.clone();
                    sorted.sort_unstable();
                    prop_assert_eq!(&sorted, &eligible);
                    for pair in picked.windows(2) {
                        let (a, b) = (&views[pair[0]], &views[pair[1]]);
                        // Primaries first; within a role, known lists first;
                        // then reachable first; then never more loaded first.
                        prop_assert!(a.fallback <= b.fallback);
                        if a.fallback == b.fallback {
                            let (ua, ub) = (a.serves == Serves::Unknown, b.serves == Serves::Unknown);
                            prop_assert!(ua <= ub);
                            if ua == ub {
                                prop_assert!(a.reachable >= b.reachable);
                                if a.reachable == b.reachable {
                                    prop_assert!(load(a, b) != Ordering::Greater);
                                }
                            }
                        }
                    }
                }
                Err(NoUpstream::NotServed) => {
                    prop_assert!(views.iter().all(|v| v.serves == Serves::No));
                }
                Err(NoUpstream::AllOpen { retry_after }) => {
                    prop_assert!(eligible.is_empty());
                    let soonest = views.iter().filter(|v| v.serves != Serves::No).filter_map(|v| v.open).min();
                    prop_assert_eq!(Some(retry_after), soonest);
                }
            }
        }
    }
}
