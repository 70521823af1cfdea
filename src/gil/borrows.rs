//! A thread's live `GilCell` borrows for one Gil: how many (exact, since it
//! is what keeps the Gil held), and, in builds with debug assertions, where
//! they were made, for the panic that names one.
//!
//! The places cost a store per borrow and a compare per drop, a quarter of
//! a borrow's cost (the README's benchmark table has the figures). Release
//! builds keep only the count and their panic says how many borrows are
//! alive; debug builds, where such a panic is met and mended, name one.
//! The standard library's `RefCell` draws the same line: it records where
//! a borrow was made only under its `debug_refcell` feature.

use crate::sync::UnsafeCell;
use core::panic::Location;

/// Where a borrow was made: what a panic names.
pub(super) type Site = &'static Location<'static>;

/// The live borrows of a thread for one Gil. Kept in the thread's
/// `ThreadState`, touched only by that thread (borrows are neither `Send`
/// nor `Sync`, and guards neither either).
pub(super) struct Borrows(UnsafeCell<Live>);

#[derive(Clone, Copy)]
struct Live {
    count: usize,
    #[cfg(debug_assertions)]
    sites: sites::Sites,
}

/// What a live borrow keeps to end itself (nothing in release builds).
#[derive(Clone, Copy)]
pub(super) struct Mark {
    #[cfg(debug_assertions)]
    site: Site,
    /// The thread's borrow count when the borrow was made: its place in
    /// the list of sites, unless earlier borrows ended out of order since.
    #[cfg(debug_assertions)]
    index: usize,
}

impl Borrows {
    pub(super) fn new() -> Self {
        Self(UnsafeCell::new(Live {
            count: 0,
            #[cfg(debug_assertions)]
            sites: sites::Sites::new(),
        }))
    }

    /// Counts a borrow made at `site`; what it returns ends it.
    #[inline]
    pub(super) fn push(&self, site: Site) -> Mark {
        #[cfg(not(debug_assertions))]
        let _ = site;
        // SAFETY:
        // - only the owning thread touches the cell (see the type), so no
        //   other access runs at once;
        // - no reference into it outlives this closure.
        self.0.with_mut(|live| unsafe {
            let live = &mut *live;
            let index = live.count;
            live.count = index + 1;
            #[cfg(debug_assertions)]
            live.sites.record(index, site);
            Mark {
                #[cfg(debug_assertions)]
                site,
                #[cfg(debug_assertions)]
                index,
            }
        })
    }

    /// Ends the borrow `mark` stands for.
    ///
    /// Broken variants checked, in `tests/gil_cell.rs`: the count left up
    /// fails `detach_panics_naming_the_live_borrow` (its second detach,
    /// after the borrow ended, panicked) and six more; in debug builds,
    /// forgetting no place when borrows end out of order fails
    /// `the_panic_never_names_a_borrow_dropped_out_of_order`, and
    /// forgetting the newest place whatever it was fails that one and
    /// `the_panic_names_a_borrow_that_is_still_alive`.
    #[inline]
    pub(super) fn pop(&self, mark: Mark) {
        #[cfg(not(debug_assertions))]
        let _ = mark;
        // SAFETY:
        // - only the owning thread touches the cell (see the type);
        // - no reference into it outlives this closure.
        self.0.with_mut(|live| unsafe {
            let live = &mut *live;
            #[cfg(debug_assertions)]
            live.sites.forget(live.count, mark.index, mark.site);
            live.count -= 1;
        });
    }

    /// Panics, naming a live borrow where one is known, if any is alive:
    /// called by every path that lets go of the Gil, before it lets go of
    /// anything.
    #[inline]
    pub(super) fn check_none(&self, what: &str) {
        // SAFETY:
        // - only the owning thread touches the cell (see the type);
        // - no reference into it outlives this closure.
        let live = self.0.with(|live| unsafe { *live });
        if live.count != 0 {
            #[cfg(debug_assertions)]
            let latest = live.sites.latest();
            #[cfg(not(debug_assertions))]
            let latest = None;
            live_borrow_panic(what, latest, live.count);
        }
    }

    /// Whether a borrow is alive (a checkpoint then keeps the Gil).
    #[inline]
    pub(super) fn any(&self) -> bool {
        // SAFETY:
        // - only the owning thread touches the cell (see the type);
        // - no reference into it outlives this closure.
        self.0.with(|live| unsafe { (*live).count != 0 })
    }
}

#[cold]
#[inline(never)]
fn live_borrow_panic(what: &str, site: Option<Site>, count: usize) -> ! {
    match site {
        Some(site) => panic!(
            "{what} would let go of the Gil while a GilCell borrow made by this thread is \
             alive (one made at {site}; {count} alive in all): another thread could then reach \
             the cell. End the borrow first (it may have come through an outer guard)."
        ),
        None => panic!(
            "{what} would let go of the Gil while GilCell borrows made by this thread are \
             alive ({count} of them): another thread could then reach the cell. End them first \
             (a debug build names where one was made)."
        ),
    }
}

/// The places of live borrows, in debug builds.
#[cfg(debug_assertions)]
mod sites {
    use super::Site;

    /// How many live borrows a thread keeps the place of (the count is
    /// kept whatever their number).
    const SITES: usize = 8;

    /// Where the first [`SITES`] live borrows, in order of creation, were
    /// made. A fixed array rather than a `Vec`: no capacity check or
    /// allocation on the borrow path.
    #[derive(Clone, Copy)]
    pub(super) struct Sites([Option<Site>; SITES]);

    impl Sites {
        pub(super) const fn new() -> Self {
            Self([None; SITES])
        }

        /// Keeps the place of the borrow that found `index` borrows alive.
        #[inline]
        pub(super) fn record(&mut self, index: usize, site: Site) {
            if let Some(slot) = self.0.get_mut(index) {
                *slot = Some(site);
            }
        }

        /// Forgets the place of a borrow made at `site` that found `index`
        /// borrows alive, `count` being alive now. The usual case, the
        /// newest borrow ending first, clears its own slot.
        #[inline]
        pub(super) fn forget(&mut self, count: usize, index: usize, site: Site) {
            if count == index + 1 {
                match self.0.get_mut(index) {
                    None => return,
                    Some(slot) if slot.is_some_and(|s| core::ptr::eq(s, site)) => {
                        *slot = None;
                        return;
                    }
                    Some(_) => {}
                }
            }
            self.forget_out_of_order(count, site);
        }

        /// Ends a borrow made at `site` that is not the newest one (or
        /// whose place moved when an older one ended): forgets the latest
        /// place recorded for `site` (borrows made at one place are alike
        /// to a panic message), so that every place kept is a live one.
        #[cold]
        #[inline(never)]
        fn forget_out_of_order(&mut self, count: usize, site: Site) {
            let kept = count.min(SITES);
            let same = |s: &Option<Site>| s.is_some_and(|s| core::ptr::eq(s, site));
            if kept > 0 && same(&self.0[kept - 1]) {
                self.0[kept - 1] = None;
            } else if let Some(at) = self.0[..kept].iter().rposition(same) {
                self.0.copy_within(at + 1..kept, at);
                self.0[kept - 1] = None;
            }
        }

        /// The newest place kept.
        pub(super) fn latest(&self) -> Option<Site> {
            self.0.iter().rev().find_map(|s| *s)
        }
    }
}
