//! Every diagnostic of `model!`, one compile-fail case each (`tests/ui/<kind>/<mistake>.rs`
//! with the exact `.stderr` it must print).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
