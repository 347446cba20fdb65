#version 330
// The outline: back faces of the inflated hull, in the material's edge colour.
uniform vec4 u_edge_color;
out vec4 f_color;

void main() {
    if (u_edge_color.a <= 0.0) {
        discard;
    }
    f_color = clamp(u_edge_color, 0.0, 1.0);
}
