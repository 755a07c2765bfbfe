/// A chart drawn as SVG text: a plot area with linear axes, tick labels, and marks added in
/// data coordinates. Marks are not clipped, so callers choose ranges that contain their data.
struct SVGChart {
    let width = 720.0
    let height = 360.0
    /// Plot area margins: left, right, top, bottom.
    let margin = (left: 64.0, right: 64.0, top: 52.0, bottom: 48.0)
    let title: String
    let xLabel: String
    let yLabel: String
    let xRange: ClosedRange<Double>
    let yRange: ClosedRange<Double>
    /// A second y axis on the right, for a series with another unit.
    var rightLabel: String? = nil
    var rightRange: ClosedRange<Double>? = nil
    private var marks: [String] = []
    private var legend: [(label: String, color: String)] = []

    init(title: String, xLabel: String, yLabel: String, xRange: ClosedRange<Double>, yRange: ClosedRange<Double>) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xRange = Self.widened(xRange)
        self.yRange = Self.widened(yRange)
    }

    /// Returns `range`, widened to a non-zero span so a constant series still maps to the plot area.
    static func widened(_ range: ClosedRange<Double>) -> ClosedRange<Double> {
        range.upperBound > range.lowerBound ? range : range.lowerBound...(range.lowerBound + 1)
    }

    var plotWidth: Double { width - margin.left - margin.right }
    var plotHeight: Double { height - margin.top - margin.bottom }

    func x(_ value: Double) -> Double {
        margin.left + (value - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * plotWidth
    }

    func y(_ value: Double, right: Bool = false) -> Double {
        let range = right ? (rightRange ?? yRange) : yRange
        return margin.top + plotHeight - (value - range.lowerBound) / (range.upperBound - range.lowerBound) * plotHeight
    }

    /// Adds a second y axis on the right for series drawn with `right: true`.
    mutating func addRightAxis(label: String, range: ClosedRange<Double>) {
        rightLabel = label
        rightRange = Self.widened(range)
    }

    /// Adds a line through `points` (x, y in data units).
    mutating func addLine(_ points: [(Double, Double)], color: String, label: String? = nil, right: Bool = false) {
        guard !points.isEmpty else { return }
        let coordinates = points.map { "\(Self.format(x($0.0))),\(Self.format(y($0.1, right: right)))" }.joined(separator: " ")
        marks.append(#"<polyline fill="none" stroke="\#(color)" stroke-width="1.5" points="\#(coordinates)"/>"#)
        if let label { legend.append((label, color)) }
    }

    /// Adds dots at `points`, for sparse series where a line would suggest values in between.
    mutating func addDots(_ points: [(Double, Double)], color: String, label: String? = nil, right: Bool = false) {
        for point in points {
            marks.append(#"<circle cx="\#(Self.format(x(point.0)))" cy="\#(Self.format(y(point.1, right: right)))" r="2" fill="\#(color)"/>"#)
        }
        if let label, !points.isEmpty { legend.append((label, color)) }
    }

    /// Adds a filled rectangle spanning x in `xSpan` and y in `ySpan` (data units).
    mutating func addRectangle(x xSpan: ClosedRange<Double>, y ySpan: ClosedRange<Double>, color: String, opacity: Double = 1) {
        let left = x(xSpan.lowerBound), right = x(xSpan.upperBound)
        let top = y(ySpan.upperBound), bottom = y(ySpan.lowerBound)
        marks.append(#"<rect x="\#(Self.format(left))" y="\#(Self.format(top))" width="\#(Self.format(max(0, right - left)))" "# +
                     #"height="\#(Self.format(max(0, bottom - top)))" fill="\#(color)" fill-opacity="\#(Self.format(opacity))"/>"#)
    }

    /// Adds a legend entry without a mark, for shaded regions.
    mutating func addLegend(_ label: String, color: String) {
        legend.append((label, color))
    }

    /// Adds text at a data position, centred horizontally.
    mutating func addText(_ text: String, x xValue: Double, y yValue: Double) {
        marks.append(#"<text x="\#(Self.format(x(xValue)))" y="\#(Self.format(y(yValue) - 4))" text-anchor="middle">\#(Self.escape(text))</text>"#)
    }

    /// Returns the whole SVG document.
    func render() -> String {
        var parts = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" font-family="sans-serif" font-size="11">"#,
            #"<rect width="100%" height="100%" fill="white"/>"#,
            #"<text x="\#(Int(width / 2))" y="22" text-anchor="middle" font-size="14">\#(Self.escape(title))</text>"#,
        ]
        parts += axes()
        parts += marks
        parts += legendMarks()
        parts.append("</svg>")
        return parts.joined(separator: "\n") + "\n"
    }

    private func axes() -> [String] {
        let left = margin.left, right = margin.left + plotWidth, top = margin.top, bottom = margin.top + plotHeight
        var parts = [#"<rect x="\#(left)" y="\#(top)" width="\#(plotWidth)" height="\#(plotHeight)" fill="none" stroke="rgb(153,153,153)"/>"#]
        for tick in Self.ticks(xRange) {
            let position = Self.format(x(tick))
            parts.append(#"<line x1="\#(position)" y1="\#(bottom)" x2="\#(position)" y2="\#(bottom + 4)" stroke="rgb(153,153,153)"/>"#)
            parts.append(#"<text x="\#(position)" y="\#(bottom + 16)" text-anchor="middle">\#(Self.label(tick))</text>"#)
        }
        for tick in Self.ticks(yRange) {
            let position = Self.format(y(tick))
            parts.append(#"<line x1="\#(left)" y1="\#(position)" x2="\#(right)" y2="\#(position)" stroke="rgb(230,230,230)"/>"#)
            parts.append(#"<text x="\#(left - 6)" y="\#(position)" text-anchor="end" dominant-baseline="middle">\#(Self.label(tick))</text>"#)
        }
        if let rightRange, let rightLabel {
            for tick in Self.ticks(rightRange) {
                let position = Self.format(y(tick, right: true))
                parts.append(#"<text x="\#(right + 6)" y="\#(position)" dominant-baseline="middle">\#(Self.label(tick))</text>"#)
            }
            parts.append(#"<text transform="translate(\#(Int(width - 14)) \#(Int(top + plotHeight / 2))) rotate(90)" text-anchor="middle">\#(Self.escape(rightLabel))</text>"#)
        }
        parts.append(#"<text x="\#(Int(left + plotWidth / 2))" y="\#(Int(height - 10))" text-anchor="middle">\#(Self.escape(xLabel))</text>"#)
        parts.append(#"<text transform="translate(16 \#(Int(top + plotHeight / 2))) rotate(-90)" text-anchor="middle">\#(Self.escape(yLabel))</text>"#)
        return parts
    }

    private func legendMarks() -> [String] {
        var parts: [String] = []
        var position = margin.left + 8
        for entry in legend {
            // One row between the title and the plot area, so no series hides behind it.
            parts.append(#"<rect x="\#(Self.format(position))" y="\#(Int(margin.top - 18))" width="10" height="10" fill="\#(entry.color)"/>"#)
            parts.append(#"<text x="\#(Self.format(position + 14))" y="\#(Int(margin.top - 9))">\#(Self.escape(entry.label))</text>"#)
            position += 24 + Double(entry.label.count) * 6.5
        }
        return parts
    }

    /// Returns about five round tick values inside `range` (steps of 1, 2 or 5 times a power of 10).
    static func ticks(_ range: ClosedRange<Double>) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let rough = span / 5
        var magnitude = 1.0
        while magnitude * 10 <= rough { magnitude *= 10 }
        while magnitude > rough { magnitude /= 10 }
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= rough } ?? magnitude * 10
        var ticks: [Double] = []
        var index = (range.lowerBound / step).rounded(.up)
        while index * step <= range.upperBound + step * 1e-9 {
            ticks.append(index == 0 ? 0 : index * step)
            index += 1
        }
        return ticks
    }

    /// Returns a tick label: an integer when the value is whole, else up to two decimals.
    static func label(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        return format(value)
    }

    /// Formats a coordinate with two decimals at most, without trailing zeros.
    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let scaled = (value * 100).rounded()
        let whole = Int(scaled) / 100, fraction = abs(Int(scaled)) % 100
        let sign = scaled < 0 && whole == 0 ? "-" : ""
        if fraction == 0 { return sign + String(whole) }
        let digits = fraction % 10 == 0 ? String(fraction / 10) : (fraction < 10 ? "0" + String(fraction) : String(fraction))
        return sign + String(whole) + "." + digits
    }

    /// Escapes the characters XML gives a meaning in text and attributes.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
