//! Any bytes as a Hugging Face config.json for the decoder and BERT models: Ok or Err,
//! never a panic, abort or huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(c) = ingot_nn::models::DecoderConfig::from_json(&v) {
        // What the constructor computes from an accepted config must work, and the config
        // must survive its own round trip.
        let _ = c.rope_frequencies();
        let back = ingot_nn::models::DecoderConfig::from_json(&c.to_json(ingot::DType::BF16))
            .expect("a written config reads back");
        assert_eq!(back.num_hidden_layers, c.num_hidden_layers);
    }
    let _ = ingot_nn::models::BertConfig::from_json(&v);
});
