#version 330
// Box-filter u_factor × u_factor premultiplied samples into one output pixel, flip rows so the
// first row read back is the image top, and divide by coverage: straight alpha, and exactly
// (0, 0, 0, 0) where nothing was drawn.
uniform sampler2D u_source;
uniform int u_factor;

out vec4 f_color;

void main() {
    ivec2 size = textureSize(u_source, 0);
    ivec2 o = ivec2(gl_FragCoord.xy);
    vec4 sum = vec4(0.0);
    for (int j = 0; j < u_factor; ++j) {
        int y = size.y - 1 - (o.y * u_factor + j);
        for (int i = 0; i < u_factor; ++i) {
            sum += texelFetch(u_source, ivec2(o.x * u_factor + i, y), 0);
        }
    }
    sum /= float(u_factor * u_factor);
    f_color = sum.a > 0.0 ? vec4(clamp(sum.rgb / sum.a, 0.0, 1.0), sum.a) : vec4(0.0);
}
