//! The committed common-password set (`shared/data/common-passwords.fst`) is exactly the
//! `passwords` crate's list: every entry of ours is on theirs, and there are as many.
//! (Their list has no duplicates, so equal counts and inclusion mean equal sets.)

use fst::{IntoStreamer, Streamer};

/// The number of distinct entries in `passwords` 3.1's `data/common-passwords.json`.
const THEIR_COUNT: usize = 99_838;

#[test]
fn the_committed_set_is_exactly_the_passwords_crate_list() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/common-passwords.fst"
    ))
    .unwrap();
    let set = fst::Set::new(bytes).unwrap();
    assert_eq!(set.len(), THEIR_COUNT);
    let mut stream = set.into_stream();
    let mut checked = 0;
    while let Some(entry) = stream.next() {
        let entry = std::str::from_utf8(entry).unwrap();
        assert!(
            passwords::analyzer::is_common_password(entry),
            "not on the passwords crate's list: {entry:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, THEIR_COUNT);
}
