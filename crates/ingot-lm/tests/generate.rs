//! Sampling filters against their definitions, generation with the shipped Shakespeare
//! model against a plain greedy loop without a cache (chunked prefill, EOS, stop strings,
//! streaming), and chat templates rendered as transformers renders them.

use ingot::{Array, DType};
use ingot_lm::{
    generate, ChatTemplate, Finish, GenerateOptions, GenerationConfig, Message, Sampler, Sampling,
    Tokenizer,
};
use ingot_nn::models::{Decoder, KvCache};
use std::path::PathBuf;

fn shakespeare() -> PathBuf {
    ["../../models/shakespeare", "models/shakespeare"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("config.json").exists())
        .expect("models/shakespeare")
}

/// Draw counts of `n` samples from `logits` with `s`.
fn counts(logits: &[f32], s: Sampling, n: usize, history: &[u32]) -> Vec<usize> {
    let mut sm = Sampler::new(s).unwrap();
    let mut c = vec![0; logits.len()];
    for _ in 0..n {
        c[sm.sample(logits, history).unwrap() as usize] += 1;
    }
    c
}

fn softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = l.iter().map(|x| (x - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|x| x / z).collect()
}

#[test]
fn sampling_filters_follow_their_definitions() {
    let logits = [1.0f32, 3.0, 0.5, 2.5, -1.0, 2.0];
    let n = 40_000;
    // Greedy: the argmax, every time.
    let c = counts(&logits, Sampling::default(), 10, &[]);
    assert_eq!(c[1], 10);
    // Temperature 0.7: frequencies follow softmax(l / 0.7) within 4 standard deviations.
    let t = 0.7;
    let s = Sampling {
        temperature: t,
        seed: 5,
        ..Sampling::default()
    };
    let p = softmax(&logits.iter().map(|&x| x as f64 / t).collect::<Vec<_>>());
    let c = counts(&logits, s.clone(), n, &[]);
    for (i, (&ci, &pi)) in c.iter().zip(&p).enumerate() {
        let sd = (n as f64 * pi * (1.0 - pi)).sqrt();
        assert!(
            (ci as f64 - n as f64 * pi).abs() <= 4.0 * sd + 1.0,
            "token {i}: {ci} draws for p {pi}"
        );
    }
    // The same seed draws the same sequence.
    assert_eq!(
        counts(&logits, s.clone(), 100, &[]),
        counts(&logits, s, 100, &[])
    );
    // top-k 2: only tokens 1 and 3.
    let c = counts(
        &logits,
        Sampling {
            temperature: 1.0,
            top_k: 2,
            ..Sampling::default()
        },
        2000,
        &[],
    );
    assert_eq!(c[1] + c[3], 2000);
    assert!(c[1] > c[3] && c[3] > 0);
    // top-p: the smallest head reaching the mass. p (T=1) sorted: 3.0, 2.5, 2.0, ...
    let p1 = softmax(&logits.iter().map(|&x| x as f64).collect::<Vec<_>>());
    let head2 = p1[1] + p1[3];
    let c = counts(
        &logits,
        Sampling {
            temperature: 1.0,
            top_p: head2 - 1e-6,
            ..Sampling::default()
        },
        2000,
        &[],
    );
    assert_eq!(c[1] + c[3], 2000, "{c:?}");
    // min-p 0.5: tokens at least half as likely as the best (3.0 and 2.5: e^-0.5 = 0.61).
    let c = counts(
        &logits,
        Sampling {
            temperature: 1.0,
            min_p: 0.5,
            ..Sampling::default()
        },
        2000,
        &[],
    );
    assert_eq!(c[1] + c[3], 2000, "{c:?}");
    // Repetition penalty 2: token 1 (3.0 -> 1.5) loses to token 3 (2.5) once seen; a
    // negative logit is multiplied.
    let c = counts(
        &logits,
        Sampling {
            repetition_penalty: 2.0,
            ..Sampling::default()
        },
        1,
        &[1, 1],
    );
    assert_eq!(c[3], 1);
    let neg = [-1.0f32, -1.5];
    let c = counts(
        &neg,
        Sampling {
            repetition_penalty: 2.0,
            ..Sampling::default()
        },
        1,
        &[0],
    );
    assert_eq!(c[1], 1, "-1 * 2 = -2 falls below -1.5");
    // Out-of-range settings are refused by name.
    for bad in [
        Sampling {
            top_p: 0.0,
            ..Sampling::default()
        },
        Sampling {
            temperature: -1.0,
            ..Sampling::default()
        },
        Sampling {
            repetition_penalty: 0.0,
            ..Sampling::default()
        },
    ] {
        let e = Sampler::new(bad).unwrap_err().to_string();
        assert!(e.contains("generate") && e.contains("out of range"), "{e}");
    }
    let mut sm = Sampler::new(Sampling {
        temperature: 1.0,
        ..Sampling::default()
    })
    .unwrap();
    assert!(sm.sample(&[f32::NAN, 1.0], &[]).is_err());
    assert!(sm.sample(&[], &[]).is_err());
}

#[test]
fn greedy_generation_matches_a_loop_without_cache() {
    let dir = shakespeare();
    let model = Decoder::from_pretrained(&dir, DType::F32).unwrap();
    let tok = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let prompt = tok.encode("ROMEO:\nWhat light").unwrap();
    let n = 12;
    // The reference: the whole sequence through the model each step, no cache.
    let mut seq = prompt.clone();
    for _ in 0..n {
        let ids: Vec<i32> = seq.iter().map(|&x| x as i32).collect();
        let logits = model
            .forward(&Array::from_slice(&ids, &[1, ids.len()]).unwrap())
            .unwrap();
        let last = ingot::argmax(&logits, Some(-1), false).unwrap();
        let v = last.to_vec::<i64>().unwrap();
        seq.push(*v.last().unwrap() as u32);
    }
    let want = &seq[prompt.len()..];
    for chunk in [512, 3] {
        let opts = GenerateOptions {
            max_tokens: n,
            prefill_chunk: chunk,
            ..GenerateOptions::default()
        };
        let mut streamed = String::new();
        let g = generate(&model, &tok, &prompt, &opts, |t| streamed.push_str(t)).unwrap();
        assert_eq!(g.tokens, want, "prefill chunk {chunk}");
        assert_eq!(g.finish, Finish::Length);
        assert_eq!(streamed, g.text);
        assert_eq!(g.text, tok.decode(want).unwrap());
        assert_eq!(g.prompt_tokens, prompt.len());
    }
    // An end token stops before it; a stop string cuts the text before it.
    let opts = GenerateOptions {
        max_tokens: n,
        eos: vec![want[4]],
        ..GenerateOptions::default()
    };
    let g = generate(&model, &tok, &prompt, &opts, |_| {}).unwrap();
    let first = want.iter().position(|&t| t == want[4]).unwrap();
    assert_eq!(g.tokens, &want[..first]);
    assert_eq!(g.finish, Finish::Eos);
    let full = tok.decode(want).unwrap();
    let stop: String = full.chars().skip(5).take(3).collect();
    let opts = GenerateOptions {
        max_tokens: n,
        stop: vec![stop.clone()],
        ..GenerateOptions::default()
    };
    let mut streamed = String::new();
    let g = generate(&model, &tok, &prompt, &opts, |t| streamed.push_str(t)).unwrap();
    assert_eq!(g.finish, Finish::Stop);
    assert_eq!(g.text, full[..full.find(&stop).unwrap()]);
    assert_eq!(
        streamed, g.text,
        "nothing past the stop string was streamed"
    );
    // Ids outside the vocabulary and empty prompts are errors, not panics.
    let e = generate(
        &model,
        &tok,
        &[999_999],
        &GenerateOptions::default(),
        |_| {},
    );
    assert!(e.unwrap_err().to_string().contains("vocabulary"));
    assert!(generate(&model, &tok, &[], &GenerateOptions::default(), |_| {}).is_err());
}

#[test]
fn a_conversation_reuses_its_cache() {
    let dir = shakespeare();
    let model = Decoder::from_pretrained(&dir, DType::F32).unwrap();
    let tok = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let a = tok.encode("KING:\nSpeak").unwrap();
    let b = tok.encode(" on, my lord.\nQUEEN:").unwrap();
    let opts = GenerateOptions {
        max_tokens: 6,
        ..GenerateOptions::default()
    };
    // The second turn appended to the first's cache gives what the whole prompt gives.
    let mut cache = KvCache::with_capacity(64);
    ingot_lm::prefill(&model, &a, &mut cache, 512).unwrap();
    let g1 = ingot_lm::generate_with_cache(&model, &tok, &b, &mut cache, &opts, |_| {}).unwrap();
    let whole: Vec<u32> = a.iter().chain(&b).copied().collect();
    let g2 = generate(&model, &tok, &whole, &opts, |_| {}).unwrap();
    assert_eq!(g1.tokens, g2.tokens);
    // Truncated back to the first turn, the cache continues as if fresh.
    assert!(cache.truncate(a.len()));
    assert_eq!(cache.len(), a.len());
    let g3 = ingot_lm::generate_with_cache(&model, &tok, &b, &mut cache, &opts, |_| {}).unwrap();
    assert_eq!(g3.tokens, g2.tokens);
}

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Llama 3's shape: bos, a system turn with the date, content stripped, raise_exception.
const LLAMA3: &str = "{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = \"\" %}
{%- endif %}
{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}
{{- \"Today Date: \" + strftime_now(\"%d %b %Y\") + \"\\n\\n\" }}
{{- system_message }}
{{- \"<|eot_id|>\" }}
{%- for message in messages %}
    {%- if message.role not in ['user', 'assistant'] %}
        {{- raise_exception('Conversation roles must be user or assistant') }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
";

#[test]
fn chat_templates_render_as_transformers_does() {
    let t = ChatTemplate::new(CHATML, "", "").unwrap();
    let msgs = [
        Message::new("system", "Be brief."),
        Message::new("user", "Hi"),
    ];
    assert_eq!(
        t.render(&msgs, true).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        t.render(&msgs[1..], false).unwrap(),
        "<|im_start|>user\nHi<|im_end|>\n"
    );
    let t = ChatTemplate::new(LLAMA3, "<|begin_of_text|>", "<|eot_id|>").unwrap();
    let out = t
        .render(
            &[
                Message::new("system", "  Be brief. "),
                Message::new("user", " Hi\n"),
            ],
            true,
        )
        .unwrap();
    assert!(
        out.starts_with(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: "
        ),
        "{out}"
    );
    assert!(out.ends_with("\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), "{out}");
    let e = t
        .render(&[Message::new("tool", "x")], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("roles must be user or assistant"), "{e}");
    // A syntax error is reported when compiling.
    let e = ChatTemplate::new("{% for m in messages %}", "", "").unwrap_err();
    assert!(e.to_string().contains("chat_template"), "{e}");
}

#[test]
fn folders_give_their_template_tokens_and_generation_config() {
    let dir = std::env::temp_dir().join(format!("ingot-lm-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(ChatTemplate::from_folder(&dir).unwrap().is_none());
    let cfg = serde_json::json!({
        "bos_token": {"content": "<s>", "lstrip": false},
        "eos_token": "</s>",
        "chat_template": [
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.content.upper() }}{{ eos_token }}{% endfor %}"}
        ]
    });
    std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    let t = ChatTemplate::from_folder(&dir).unwrap().unwrap();
    assert_eq!(
        t.render(&[Message::new("user", "hey")], false).unwrap(),
        "<s>HEY</s>"
    );
    // chat_template.jinja wins over the JSON.
    std::fs::write(dir.join("chat_template.jinja"), "{{ messages|length }}").unwrap();
    let t = ChatTemplate::from_folder(&dir).unwrap().unwrap();
    assert_eq!(t.render(&[Message::new("user", "a")], false).unwrap(), "1");
    // generation_config.json: sampling only with do_sample; eos as a list.
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"do_sample": true, "temperature": 0.6, "top_p": 0.9, "eos_token_id": [128001, 128009]}"#,
    )
    .unwrap();
    let g = GenerationConfig::from_folder(&dir).unwrap();
    assert_eq!(g.sampling.temperature, 0.6);
    assert_eq!(g.sampling.top_p, 0.9);
    assert_eq!(g.sampling.top_k, 50);
    assert_eq!(g.eos, vec![128001, 128009]);
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"temperature": 0.6, "eos_token_id": 2}"#,
    )
    .unwrap();
    let g = GenerationConfig::from_folder(&dir).unwrap();
    assert_eq!(g.sampling.temperature, 0.0, "greedy without do_sample");
    assert_eq!(g.eos, vec![2]);
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"do_sample": true, "top_p": 3}"#,
    )
    .unwrap();
    assert!(GenerationConfig::from_folder(&dir).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_batch_of_prompts_generates_what_each_prompt_does_alone() {
    let dir = shakespeare();
    let model = Decoder::from_pretrained(&dir, DType::F32).unwrap();
    let tok = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let prompts: Vec<Vec<u32>> = [
        "ROMEO:\nWhat light",
        "KING:",
        "First Citizen:\nBefore we proceed any further, hear me speak.",
    ]
    .iter()
    .map(|p| tok.encode(p).unwrap())
    .collect();
    for sampling in [
        Sampling::default(),
        Sampling {
            temperature: 0.8,
            top_k: 40,
            seed: 3,
            ..Sampling::default()
        },
    ] {
        let opts = GenerateOptions {
            max_tokens: 10,
            sampling: sampling.clone(),
            prefill_chunk: 4,
            stop: vec!["\n\n".into()],
            ..GenerateOptions::default()
        };
        let mut streamed = vec![String::new(); prompts.len()];
        let batch = ingot_lm::generate_batch(&model, &tok, &prompts, &opts, |r, t| {
            streamed[r].push_str(t)
        })
        .unwrap();
        for (r, p) in prompts.iter().enumerate() {
            let mut o = opts.clone();
            o.sampling.seed = sampling.seed + r as u64;
            let alone = generate(&model, &tok, p, &o, |_| {}).unwrap();
            assert_eq!(batch[r].tokens, alone.tokens, "row {r}, {sampling:?}");
            assert_eq!(batch[r].text, alone.text);
            assert_eq!(batch[r].finish, alone.finish);
            assert_eq!(streamed[r], alone.text);
        }
    }
    assert!(ingot_lm::generate_batch(
        &model,
        &tok,
        &[vec![1], vec![]],
        &GenerateOptions::default(),
        |_, _| {}
    )
    .is_err());
}
