//! Any bytes as a (decrypted) RTCP compound packet, the way a session reads a viewer's feedback:
//! the parser and the NACK expansion must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    if let Ok(packets) = rtc_rtcp::packet::unmarshal(&mut buf) {
        for p in &packets {
            if let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() {
                for pair in &nack.nacks {
                    assert!(pair.packet_list().len() <= 17);
                }
            }
        }
    }
});
