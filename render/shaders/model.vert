#version 330
// Skinned positions and normals arrive already posed (model frame); the edge pass pushes each
// vertex out along its normal by u_edge (model units) × the vertex's edge scale.
// RAMP (0/1, phong's face variant, see model.frag): the face's light term, the material's toon
// ramp at n·l relative to its lit end, is evaluated here per vertex (a few thousand texture
// fetches a frame instead of one or two per fragment) and interpolated.
#ifndef RAMP
#define RAMP 0
#endif
uniform mat4 u_mvp;
uniform float u_edge;
#if RAMP
uniform sampler2D u_toon;
#endif

in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
in float in_edge_scale;
in float in_face;  // 1: part of the face, lit through its ramp (the RAMP variant)

out vec3 v_normal;
out vec2 v_uv;
flat out float v_face;
#if RAMP
out vec3 v_ramp;
#endif

void main() {
    float len = length(in_normal);
    vec3 n = len > 0.0 ? in_normal / len : vec3(0.0, 0.0, 1.0);
    vec3 p = in_position + n * (u_edge * in_edge_scale);
    gl_Position = u_mvp * vec4(p, 1.0);
    v_normal = n;
    v_uv = in_uv;
    v_face = in_face;
#if RAMP
    // The light points along -z: n·l = n.z. Row 0 of the ramp is its lit end.
    vec3 ramp = textureLod(u_toon, vec2(0.5, clamp(0.5 - n.z * 0.5, 0.0, 1.0)), 0.0).rgb;
    vec3 lit = max(textureLod(u_toon, vec2(0.5, 0.0), 0.0).rgb, vec3(1.0 / 255.0));
    v_ramp = in_face > 0.5 ? min(ramp / lit, vec3(1.0)) : vec3(-1.0);  // < 0: Lambert, per pixel
#endif
}
