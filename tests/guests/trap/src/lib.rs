//! A backend that fails on purpose, to prove a broken component only fails its own call.
//!
//! Inbound: text `trap` panics (a Wasm trap), `loop` spins forever (epoch deadline),
//! anything else is accepted. Outbound: always traps.

use smsgw_guest::*;

struct Trap;

impl Backend for Trap {
    fn parse_incoming(_ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        let params = Params::from_query(&req);
        let text = params.required("text")?;
        match text.as_str() {
            "trap" => panic!("trap requested"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            _ => Ok(Incoming::messages(vec![IncomingMessage::new(params.required("identity")?, text)])),
        }
    }

    fn send(_ctx: BackendContext, _msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        panic!("send always traps")
    }
}

export_backend!(Trap);
