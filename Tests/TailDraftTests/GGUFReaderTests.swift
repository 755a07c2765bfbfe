import Testing
@testable import TailDraft

@Suite struct GGUFReaderTests {
    @Test func placeholder() { #expect(GGMLType.q4_1.blockBytes == 20) }
}
