#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root");
    let printed = api::graphql::sdl();
    assert!(
        committed == printed,
        "schema.graphql is out of date: run `cargo run -- print-schema > schema.graphql`"
    );
}
