import Foundation
import Kernels
@testable import TailDraft

/// Returns `checkpoint` encoded in the first drafter checkpoint format, `TDDRAFT1`, which the
/// library still loads but no longer writes. `DrafterCheckpointVersion1` documents the layout.
func version1CheckpointBytes(_ checkpoint: DrafterCheckpoint, target: DrafterTarget) throws -> [UInt8] {
    let fingerprint = try target.fingerprint()
    let weights = checkpoint.weights
    var out = ByteWriter()
    out.append(bytes: DrafterCheckpointVersion1.magic)
    out.append(DrafterCheckpointVersion1.formatVersion)
    out.append(fingerprint.hash)
    out.append(fingerprint.size)
    out.append(Int64(weights.version))
    let c = weights.config
    for value in [c.hiddenSize, c.headCount, c.kvHeadCount, c.feedForwardSize, c.draftVocabularySize, target.config.vocabularySize] {
        out.append(Int32(value))
    }
    out.append(c.rmsNormEpsilon.bitPattern)
    out.append(c.ropeBase.bitPattern)
    out.append(UInt32((checkpoint.moments != nil ? 1 : 0) | (checkpoint.tokenCounts != nil ? 2 : 0)))
    for token in weights.vocabulary.tokens { out.append(token) }
    var floats = weights.parameters.array
    if let moments = checkpoint.moments { floats += moments.first.array + moments.second.array }
    for value in floats { out.append(value.bitPattern) }
    for count in checkpoint.tokenCounts ?? [] { out.append(UInt32(clamping: count)) }
    out.append(out.bytes.withUnsafeBytes { td_drafter_hash($0.baseAddress, $0.count) })
    return out.bytes
}
