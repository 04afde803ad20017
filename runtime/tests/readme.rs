//! The configuration reference in the README is a real, valid configuration.

#[test]
fn readme_configuration_reference_parses_and_validates() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split("## Configuration reference").nth(1).expect("section");
    let block = section.split("```toml").nth(1).and_then(|b| b.split("```").next()).expect("toml block");
    let config: smsgw::config::Config = toml::from_str(block).unwrap_or_else(|e| panic!("README config: {e}"));
    config.validate().unwrap();
    assert_eq!(config.backends[0].name, "kannel");
    assert_eq!(config.limits, smsgw::limits::Limits::default(), "README limits are the defaults");
}
