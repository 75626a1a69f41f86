//! The remote protocol's decoders on arbitrary bytes: the frame splitter
//! (as the server runs it on what a client sends), the Hello parser and
//! the payload decoders. None may panic; a frame that splits must
//! re-emit to the same header bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rump::remote::wire;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((h, payload, used))) = wire::split_frame(rest, wire::MAX_FRAME) {
        assert_eq!(&h.to_bytes()[..], &rest[..wire::HEADER_LEN]);
        assert_eq!(payload.len(), h.len as usize);
        let _ = wire::decode_call(payload);
        let _ = wire::decode_reply(payload);
        let _ = wire::decode_control(payload);
        let _ = wire::decode_control_reply(payload);
        rest = &rest[used..];
    }
    let _ = wire::Hello::parse(data).map(|h| h.common_version());
});
