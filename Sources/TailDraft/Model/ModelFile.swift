extension GGUFFile {
    /// Opens the model file at `path` as `init(path:)` does, and rejects a learned-drafter
    /// checkpoint with an error that names the file as one. A GGUF checkpoint is recognized
    /// by its architecture, one in the earlier TDDRAFT1 format by its magic.
    /// - Throws: `DrafterError.checkpointGivenAsModel` for a drafter checkpoint, otherwise
    ///   what `init(path:)` throws.
    public static func openModel(path: String) throws -> GGUFFile {
        let file: GGUFFile
        do {
            file = try GGUFFile(path: path)
        } catch GGUFError.badMagic where DrafterCheckpointVersion1.matches(path: path) {
            throw DrafterError.checkpointGivenAsModel(path: path)
        }
        if file.metadata["general.architecture"]?.stringValue == DrafterCheckpoint.architecture {
            throw DrafterError.checkpointGivenAsModel(path: path)
        }
        return file
    }
}
