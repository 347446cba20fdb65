#version 330
// Box-filter FACTOR × FACTOR premultiplied samples into one output pixel, flip rows so the
// first row read back is the image top, and divide by coverage: straight alpha, and exactly
// (0, 0, 0, 0) where nothing was drawn — and where the coverage rounds to an 8-bit alpha of 0
// (a nearly transparent texel's filtered edge), so no colour is ever left under alpha 0. The
// alpha is written as the byte it rounds to, so the readback cannot round it differently. FACTOR is a compile-time constant so the loops unroll
// (a uniform loop bound costs llvmpipe more than the fetches themselves).
uniform sampler2D u_source;

out vec4 f_color;

void main() {
    int top = textureSize(u_source, 0).y - 1;
    ivec2 o = ivec2(gl_FragCoord.xy) * FACTOR;
    vec4 sum = vec4(0.0);
    for (int j = 0; j < FACTOR; ++j) {
        for (int i = 0; i < FACTOR; ++i) {
            sum += texelFetch(u_source, ivec2(o.x + i, top - (o.y + j)), 0);
        }
    }
    sum /= float(FACTOR * FACTOR);
    float alpha = roundEven(sum.a * 255.0) / 255.0;  // as the 8-bit conversion rounds
    f_color = alpha > 0.0 ? vec4(clamp(sum.rgb / sum.a, 0.0, 1.0), alpha) : vec4(0.0);
}
