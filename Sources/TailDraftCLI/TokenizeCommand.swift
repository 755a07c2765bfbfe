import TailDraft

/// `taildraft tokenize`: prints the ids and pieces of a text.
enum TokenizeCommand {
    static func run(_ arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(Help.tokenize); return }
        let args = try Arguments(command: "tokenize", arguments: arguments, valueOptions: ["model", "text"], flagOptions: ["json"])
        let file = try GGUFFile.openModel(path: try args.required("model"))
        let tokenizer = try BPETokenizer(gguf: file)
        let text = try args.required("text")
        let ids = tokenizer.encode(text, parseSpecial: true)
        // Control tokens decode to nothing; show their text so the user sees which one it is.
        let pieces = ids.map { id in
            tokenizer.isControl(id) ? (tokenizer.tokenText(id) ?? "") : String(decoding: tokenizer.pieceBytes(id), as: UTF8.self)
        }
        if args.flag("json") {
            // Pieces of multi-byte characters are not valid text alone, so "bytes" gives every
            // piece's exact bytes beside its text.
            let bytes = ids.map { id in JSON.array(tokenizer.pieceBytes(id).map { .int(Int($0)) }) }
            print(JSON.object([("ids", JSON.ids(ids)), ("pieces", .array(pieces.map { .string($0) })),
                               ("bytes", .array(bytes))]).serialized())
        } else {
            for (id, piece) in zip(ids, pieces) {
                // A piece that is part of a multi-byte character is not text by itself: show
                // its bytes in hex instead of replacement characters.
                let bytes = tokenizer.pieceBytes(id)
                if !tokenizer.isControl(id) && String(validating: bytes, as: UTF8.self) == nil {
                    print("\(id)\t<bytes \(bytes.map { hexByte($0) }.joined(separator: " "))>")
                } else {
                    print("\(id)\t\(JSON.quote(piece))")
                }
            }
            print("\(ids.count) tokens")
        }
    }
}

/// Two uppercase hex digits.
private func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}
