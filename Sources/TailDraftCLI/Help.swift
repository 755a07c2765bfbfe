/// Help texts of the `taildraft` commands.
enum Help {
    static let main = """
    taildraft: run GGUF language models on the CPU.

    Usage: taildraft <command> [options]

    Commands:
      generate   Generate text from a prompt, streaming it to standard output.
      rollout    Generate many responses to a file of prompts with continuous batching.
      train-drafter
                 Train the learned drafter on the model's responses to a file of prompts.
      tokenize   Print the token ids of a text.
      info       Print a model's architecture, sizes, tensor types and tokenizer.
      help       Show this text, or 'taildraft help <command>' for one command.
      version    Print the version.

    Run 'taildraft <command> --help' for the options of a command.
    """

    static let trainDrafter = """
    Usage: taildraft train-drafter --model PATH --prompts FILE.jsonl --drafter PATH
                                   (--minutes N | --tokens N) [options]

    Trains the learned drafter on the target model's own output before serving. Generates
    responses to the prompts of a JSON Lines file in batches (as 'rollout' does, --batch
    sequences at once), pass after pass over the file with new sampling seeds, while the
    drafter trains on every position on a core of its own. Stops when --minutes have passed
    or --tokens response tokens were generated, whichever comes first; responses under way
    then are cut short, but their positions have reached the trainer. At temperature 0 it
    stops after one pass, because further passes would repeat the same responses. A run that
    continues a saved drafter numbers its passes from the drafter's training step, so its
    sampling seeds differ from earlier runs'. Positions received by the trainer include the
    prompts' positions.

    The drafter is loaded from --drafter when the file exists and saved there during
    training and at exit; use it with 'generate --speculate learned --drafter PATH' or
    '--speculate auto --drafter PATH'. A progress line goes to standard error every 5
    seconds, and a summary at the end. Ctrl-C stops generation, prints the summary and
    saves the drafter (exit status 130); a second Ctrl-C quits at once without saving.

    Prompt file: one object per line, {"id": "q1", "prompt": "raw text"} or
    {"id": "q1", "messages": [{"role": "user", "content": "text"}]} for chat, as for rollout.

    Options:
      --model PATH         GGUF model file (required).
      --prompts FILE       Prompt file in JSON Lines format (required).
      --drafter PATH       Drafter checkpoint (a GGUF file) to continue from and save to
                           (required).
      --minutes N          Time to generate and train, in minutes; may be fractional.
      --tokens N           Response tokens to generate and train on.
                           At least one of --minutes and --tokens is required.
      --batch N            Sequences generated at once (default 16).
      --unroll-weight W    Weight of the unrolled step (training-time test): each sample
                           also trains the drafter one position ahead from its own predicted
                           hidden states, as drafting a second token does (default 0, off).
                           A training step then takes about twice as long.
      --max-tokens N       Maximum tokens per response (default 256).
      --temperature T      Softmax temperature (default 0.7); 0 trains on greedy responses.
      --seed N             Sampling seed; every response gets its own seed derived from it
                           (default 0).
      --train-cores LIST   CPU cores for the training thread, such as 1 or 0,1 (default: the
                           last core when the machine has two or more). Training runs at
                           normal priority on cores inference does not use, otherwise at idle
                           priority.
      --replay-mb N        Memory of the trainer's replay buffer in megabytes (10^6 bytes),
                           1...65536 (default 38: about 15,600 positions of SmolLM2-135M).
                           When it is full, older responses that the drafter already
                           predicts well leave first.
      --threads N          CPU threads for generation (default: the cores not used for
                           training).
      --context N          KV cache size in tokens (default: the model's trained context,
                           at most 4096).
    """

    static let generate = """
    Usage: taildraft generate --model PATH --prompt TEXT [options]

    Generates text and streams it to standard output as it is decoded. Prefill and decode
    speeds (tokens per second) go to standard error at the end.

    Options:
      --model PATH         GGUF model file (required).
      --prompt TEXT        Prompt text (required). Control-token strings such as <|im_start|>
                           in it become control tokens, as in llama.cpp's raw prompts.
      --chat               Treat --prompt as one user message: wrap it in the model's chat
                           template (ChatML, with the default system message the template
                           adds) and tokenize the message as plain text.
      --max-tokens N       Maximum number of tokens to generate (default 256).
      --temperature T      Softmax temperature; 0 means greedy decoding (default 0.8).
      --top-k K            Sample only from the K most likely tokens; 0 turns it off (default 40).
      --top-p P            Sample only from the most likely tokens whose probabilities sum
                           to P, in (0, 1]; 1 turns it off (default 0.95).
      --min-p P            Drop tokens less likely than P times the most likely one, in [0, 1];
                           0 turns it off (default 0.05).
      --seed S             Seed of the sampler's random generator (default 0). The same seed
                           and options give the same text.
      --context N          KV cache size in tokens: prompt plus generated text, at most the
                           model's trained context (default: that context, at most 4096).
                           Memory: 23 KB per token for SmolLM2-135M.
      --speculate MODE     Speculative decoding: none (default); lookup, which drafts the
                           tokens that followed the latest earlier occurrence of the newest
                           tokens in the prompt and output; suffix, which drafts a tree of
                           the most frequent continuations of the longest repeated suffix; or
                           auto, which uses whichever of the two recent steps accepted more;
                           or learned, a small neural drafter that reads the model's hidden
                           states and trains itself on the generated text in the background.
                           With --drafter, auto also trains the learned drafter as learned
                           does, merges its branches into its trees while they add accepted
                           tokens, and drops them when they stop adding.
                           Output is unchanged: the same tokens when greedy, the same
                           distribution when sampling. Speculation switches itself off
                           while drafts are rarely accepted, and back on when they match.
      --draft-budget N     Most drafted tokens verified per step (default 3, 1...64). Each
                           step drafts as many of them as recent acceptance and the measured
                           cost of verifying that many rows make worthwhile, and none when
                           drafting does not pay. The cost is measured once per model,
                           kernel path and thread count (well under a second) and kept in
                           $XDG_CACHE_HOME/taildraft or ~/.cache/taildraft.
      --draft-depth N      Most drafted tokens in a row after the newest one (default 8, 1...64).
      --drafter PATH       With --speculate learned or auto: load the drafter checkpoint (a
                           GGUF file) from PATH when the file exists (it must have been
                           trained for the same model file), and save it there during
                           training and at exit. Without it the learned drafter starts
                           untrained and is discarded, and auto does not use it. Ctrl-C with
                           a learned drafter ends generation, prints the statistics and saves
                           it (exit status 130).
      --train-cores LIST   With the learned drafter: CPU cores for the training thread, such
                           as 1 or 0,1 (default: any core). Training runs at idle priority.
                           When the other cores can hold --threads, inference is pinned to
                           them, so training gets these cores whole (for example --threads 1
                           --train-cores 1 on two cores).
      --replay-mb N        With the learned drafter: memory of the trainer's replay buffer in
                           megabytes (10^6 bytes), 1...65536 (default 38: about 15,600
                           positions of SmolLM2-135M). When it is full, older text that the
                           drafter already predicts well leaves first.
      --threads N          CPU threads for the kernels (default: the number of cores).
                           Output does not depend on it.

      --json               Print one JSON object instead of streaming text: prompt_token_ids,
                           token_ids, text, finish_reason ("stop", "length", or
                           "interrupted" after Ctrl-C), timings, and
                           with --speculate a speculation object (drafter, steps,
                           switched_off_steps: steps without a draft because speculation was
                           switched off, drafted, accepted, acceptance_rate: accepted over
                           drafted, acceptance_length in tokens per step, acceptance_by_depth,
                           draft_ms, verify_ms; with auto and --drafter also merged_steps:
                           steps whose tree contained learned branches, trial_steps: those
                           of them that were trials before a merge,
                           skipped_trials: trials left out while the learned drafter's
                           accuracy was below 35 %, merges and drops: times they were merged
                           and dropped, merge_gain: extra accepted tokens per step at the
                           end), and with --speculate learned, or auto with
                           --drafter, a drafter_training object (steps, rows_trained,
                           fresh_accuracy, ...).
      --help               Show this text.

    Sampling filters apply in llama.cpp's order: top-k, top-p, min-p, then temperature.

    Environment: TAILDRAFT_ISA=scalar|avx2|avx512 forces a kernel path (default: the best
    one this CPU supports).
    """

    static let tokenize = """
    Usage: taildraft tokenize --model PATH --text TEXT [--json]

    Prints the token ids of TEXT with each token's text. Control-token strings such as
    <|im_start|> become control tokens, as in 'generate --prompt'. A token that holds only
    part of a multi-byte character shows its bytes in hex, such as <bytes E6 97>.

    Options:
      --model PATH   GGUF model file (required).
      --text TEXT    Text to tokenize (required).
      --json         Print {"ids": [...], "pieces": [...], "bytes": [[...], ...]}: each
                     piece as its decoded text, and its exact bytes.
      --help         Show this text.
    """

    static let info = """
    Usage: taildraft info --model PATH

    Prints the model's architecture, sizes, tensor types, tokenizer and memory use.

    Options:
      --model PATH   GGUF model file (required).
      --help         Show this text.
    """

    static let rollout = """
    Usage: taildraft rollout --model PATH --prompts FILE.jsonl [options]

    Generates --samples-per-prompt responses to every prompt of a JSON Lines file at once,
    as reinforcement-learning rollouts and batch evaluations do. All running sequences
    decode together in one batched forward pass; a finished sequence leaves the batch at
    once and a waiting one takes its place. Each response is written as one JSON line as
    soon as it finishes, with prompt_id, sample_index, step (from 1, as in the progress
    lines and the summary), seed, token_ids, text, finish_reason ("stop" or "length") and
    completion_tokens.

    Each response has its own sampler, seeded from --seed, the step, the prompt's index and
    the sample index. The "seed" field is that seed. With --speculate none, or temperature 0,
    'taildraft generate --seed' with it and the same prompt and sampling options gives the
    same tokens, whatever else ran in the batch. A sampled response that finishes while the
    tail speculates has the target's distribution but not those exact tokens.

    Prompt file: one object per line, {"id": "q1", "prompt": "raw text"} or
    {"id": "q1", "messages": [{"role": "user", "content": "text"}]} for chat, which gets the
    model's chat template. Ids are unique strings or integers; other keys are ignored. A file
    with an invalid line is rejected with the line's number.

    Options:
      --model PATH             GGUF model file (required).
      --prompts FILE           Prompt file in JSON Lines format (required).
      --samples-per-prompt N   Responses per prompt (default 1).
      --max-tokens N           Maximum tokens per response, not counting the prompt
                               (default 256).
      --temperature T          Softmax temperature; 0 means greedy decoding (default 0.8).
      --top-k K                Sample only from the K most likely tokens; 0 turns it off
                               (default 40).
      --top-p P                Sample only from the most likely tokens whose probabilities
                               sum to P, in (0, 1]; 1 turns it off (default 0.95).
      --min-p P                Drop tokens less likely than P times the most likely one, in
                               [0, 1]; 0 turns it off (default 0.05).
      --seed S                 Seed of the responses' samplers and of the strategy bandit
                               (default 0).
      --steps K                Run the whole rollout K times over the same prompts, as the
                               steps of a training loop do, with new seeds each step; the
                               suffix drafter and the bandit keep what they learned
                               (default 1). Each step's time, tokens per second and tau are
                               reported.
      --speculate MODE         Speculative decoding in passes where at most --tail-threshold
                               sequences run (the long tail): none (default);
                               lookup, which drafts what followed earlier occurrences of the
                               newest tokens; suffix, which drafts frequent continuations
                               from the sequence and every finished response; or auto, where
                               an epsilon-greedy bandit per batch size picks among no drafts
                               and both drafters with 2, 3 or 5 drafted tokens, by measured
                               tokens per second (with --drafter also the learned drafter
                               alone, and the suffix drafter merging the learned drafter's
                               branches while they add accepted tokens); or learned, where
                               each sequence drafts with
                               the learned drafter of --drafter (required), fed with its own
                               hidden states and updated as the rollout trains it. Greedy
                               output is unchanged; sampled output keeps its distribution.
      --tail-threshold N       Largest number of running sequences that speculate (default 4).
      --draft-budget N         Most drafted tokens per sequence and step for lookup and
                               suffix (default 3, 1...64); each step drafts as many as recent
                               acceptance makes worthwhile.
      --max-running N          Most sequences in the batch at once (default 64).
      --kv-budget TOKENS       Most KV-cache slots of all running sequences together, in
                               tokens. Each sequence takes the longest prompt plus
                               --max-tokens plus draft room, so this also bounds the batch.
                               Memory: 23 KB per token for SmolLM2-135M (default: room for
                               --max-running sequences).
      --context N              Token limit per sequence, prompt plus response, at most the
                               model's trained context (default: that context, at most 4096).
      --drafter PATH           Train the learned drafter on every response while the rollout
                               runs (each response is its own sequence for training), from
                               the GGUF checkpoint at PATH when the file exists, and save it
                               there during training and at the end. The trainer collects
                               positions throughout but trains after each step, for up to a
                               tenth of the step's time, and also in the long tail (at idle
                               priority): when --threads leaves a core free, or else on a
                               core taken from inference where, measured per batch size, one
                               inference thread fewer loses less than a tenth of the tokens
                               per second. The progress line shows the cores of each and
                               the drafter's version (vN: its training step). Its
                               summary line counts positions received, positions dropped
                               because its ring was full, duplicate rows skipped (such as a
                               prompt shared by several samples) and rows trained counting
                               replays. Ctrl-C ends the rollout after the current pass, keeps
                               the responses written and saves the drafter (exit status 130).
                               The tail drafts with it under --speculate learned and, as arms
                               of the bandit, under --speculate auto; 'generate --speculate
                               learned --drafter PATH' uses it later.
      --train-cores LIST       With --drafter: CPU cores for the training thread, such as 1
                               (default: any core).
      --replay-mb N            With --drafter: memory of the trainer's replay buffer in
                               megabytes (10^6 bytes), 1...65536 (default 38: about 15,600
                               positions of SmolLM2-135M). It replays responses with many
                               missed drafts and long responses more often; when it is full,
                               older responses that the drafter already predicts well leave
                               first.
      --out FILE               Write the JSON lines to FILE instead of standard output.
      --report DIR             Write report.json and SVG charts into DIR: response lengths,
                               tokens per second and tau over time, batch size over time with
                               speculation marked, and time per step.
      --threads N              CPU threads for the kernels (default: the number of cores).
                               Output does not depend on it.
      --help                   Show this text.

    Progress goes to standard error: one line updated in place on a terminal, a plain line
    every 5 seconds otherwise. A summary table follows at the end: responses, tokens, time in
    seconds, tokens per second, the tail's time and share, tau (tokens per sequence step
    while speculating), the bandit's record, and peak resident memory.
    """
}
