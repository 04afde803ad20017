fn main() -> anyhow::Result<()> {
    smsgw::cli::main()
}
