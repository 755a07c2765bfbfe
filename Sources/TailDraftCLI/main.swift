import TailDraft
let model = try Transformer(path: "models/SmolLM2-135M-Instruct.Q4_1.gguf", threads: 2)
print(model.config)
let cache = KVCache(config: model.config, capacity: 256)
var tokens: [Int32] = [504, 3575, 282, 4649, 314]
var out = try model.forward(.causal(tokens: tokens, startPosition: 0, logitRows: [4]), caches: [cache])
var generated: [Int32] = []
for _ in 0..<20 {
    let l = out.logits(row: out.logitRows[0])
    var best = l.startIndex
    for i in l.indices where l[i] > l[best] { best = i }
    let t = Int32(best - l.startIndex)
    generated.append(t)
    out = try model.forward(.causal(tokens: [t], startPosition: cache.count, logitRows: [0]), caches: [cache])
}
print(generated)
